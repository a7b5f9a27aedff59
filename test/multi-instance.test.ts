// Three server processes share PostgreSQL and Valkey. One takes API writes,
// psql writes behind all of them, and all three serve concurrent reads. Every
// request's start, end and answer is recorded, and the history is checked: no
// read that began after a write was acknowledged (for psql writes: after their
// commit plus the 100 ms propagation bound) returns an older count.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { useTestDatabase } from "./support/database.ts";
import { run } from "./support/run.ts";
import { type ServerProcess, startServerProcess } from "./support/server-process.ts";
import { cachePrefix } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
let servers: ServerProcess[] = [];
beforeAll(async () => {
  const env = { DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: cachePrefix() };
  servers = await Promise.all(
    [0, 1, 2].map(() => startServerProcess(env, ["node", "--import", "tsx", "server/main.ts"])),
  );
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

const propagationMs = 100;
const customers = [40, 41, 42];
type Key = number | "all";

interface Write {
  via: "api" | "psql";
  customer: number;
  start: number;
  /** When the writer had its acknowledgement (for psql, when it exited after COMMIT). */
  end: number;
}
interface Read {
  server: number;
  key: Key;
  start: number;
  end: number;
  value: number;
}

const now = () => performance.now();
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

async function count(server: ServerProcess, key: Key): Promise<number> {
  const res = await fetch(`${server.url}/count${key === "all" ? "" : `?customerid=${key}`}`);
  if (res.status !== 200) throw new Error(`GET /count answered ${res.status}`);
  return ((await res.json()) as { count: number }).count;
}

describe("three instances, one truth", () => {
  it("serve no stale read in a history of concurrent API writes, psql writes and reads", async () => {
    const base = new Map<Key, number>();
    for (const key of [...customers, "all"] as Key[]) base.set(key, await count(servers[1] as ServerProcess, key));
    const writes: Write[] = [];
    const reads: Read[] = [];
    const until = now() + 6000;

    const apiWriter = async () => {
      while (now() < until) {
        const customer = pick(customers);
        const start = now();
        const res = await fetch(`${servers[0]?.url}/add/`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ customerid: customer, netamount: 1, tax: 0.08 }),
        });
        expect(res.status).toBe(200);
        writes.push({ via: "api", customer, start, end: now() });
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const psqlWriter = async () => {
      while (now() < until) {
        const customer = pick(customers);
        const start = now();
        const result = await run("psql", [
          db.url,
          "-qc",
          `INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount) VALUES ('2004-08-08', ${customer}, 1, 0.08, 1.08)`,
        ]);
        expect(result.code, result.stderr).toBe(0);
        writes.push({ via: "psql", customer, start, end: now() });
      }
    };
    const reader = async () => {
      while (now() < until) {
        const server = Math.floor(Math.random() * servers.length);
        const key = pick<Key>([...customers, "all"]);
        const start = now();
        const value = await count(servers[server] as ServerProcess, key);
        reads.push({ server, key, start, end: now(), value });
      }
    };
    await Promise.all([apiWriter(), psqlWriter(), ...Array.from({ length: 6 }, reader)]);

    const affects = (w: Write, key: Key) => key === "all" || w.customer === key;
    const stale = reads.filter((r) => {
      const mustSee = writes.filter(
        (w) => affects(w, r.key) && (w.via === "api" ? w.end : w.end + propagationMs) <= r.start,
      );
      return r.value < (base.get(r.key) ?? 0) + mustSee.length;
    });
    const impossible = reads.filter(
      (r) => r.value > (base.get(r.key) ?? 0) + writes.filter((w) => affects(w, r.key) && w.start <= r.end).length,
    );
    console.log(
      `history: ${reads.length} reads on 3 instances, ${writes.filter((w) => w.via === "api").length} API writes, ` +
        `${writes.filter((w) => w.via === "psql").length} psql writes; stale reads: ${stale.length}`,
    );
    expect(writes.filter((w) => w.via === "api").length).toBeGreaterThan(20);
    expect(writes.filter((w) => w.via === "psql").length).toBeGreaterThan(10);
    expect(reads.length).toBeGreaterThan(1000);
    expect(stale).toEqual([]);
    expect(impossible).toEqual([]);
    const [{ n: total } = { n: 0 }] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders`;
    expect(total).toBe((base.get("all") ?? 0) + writes.length);
  });
});
