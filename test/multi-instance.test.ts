// Three server processes share PostgreSQL and Valkey. API writes go to any of
// them, psql writes behind all of them, and all three serve concurrent reads,
// while Valkey is cut off, the change applier is killed (SIGKILL), and the
// three are restarted one after another. Every request's start, end and answer
// is recorded, and the history is checked: no read that began after a write
// was acknowledged (for psql writes: after their commit plus the 100 ms
// propagation bound, or the takeover bound while the applier is replaced)
// returns an older count.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { epochTag, tagKey } from "../server/cache/keys.ts";
import { useTestDatabase } from "./support/database.ts";
import { useFixture } from "./support/fixture.ts";
import { run } from "./support/run.ts";
import { type ServerProcess, startServerProcess } from "./support/server-process.ts";
import { useProxy } from "./support/tcp-proxy.ts";
import { cachePrefix, valkeyClient } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const valkeyProxy = useProxy(() => inject("valkeyUrl"), 6379);
const valkey = useFixture(
  async () => valkeyClient(),
  async (client) => void client.disconnect(),
);
const prefix = cachePrefix();
const start = () =>
  startServerProcess({ DATABASE_URL: db.url, VALKEY_URL: valkeyProxy.url(inject("valkeyUrl")), CACHE_PREFIX: prefix }, [
    "node",
    "--import",
    "tsx",
    "server/main.ts",
  ]);

/** The three instances; one being restarted takes no new requests, and is stopped once it has none running. */
class Fleet {
  servers: ServerProcess[] = [];
  private readonly draining = new Set<number>();
  private readonly running = [0, 0, 0];

  async start(): Promise<void> {
    this.servers = await Promise.all([0, 1, 2].map(start));
  }

  /** Runs `request` on a random instance that takes requests. */
  async on<T>(request: (server: ServerProcess, index: number) => Promise<T>): Promise<T> {
    const live = [0, 1, 2].filter((i) => !this.draining.has(i));
    const index = live[Math.floor(Math.random() * live.length)] as number;
    this.running[index] = (this.running[index] ?? 0) + 1;
    try {
      return await request(this.servers[index] as ServerProcess, index);
    } finally {
      this.running[index] = (this.running[index] ?? 1) - 1;
    }
  }

  /** Restarts instance `index`; `beforeStop` sees it drained (e.g. to read its metrics). SIGKILL: killed, not stopped. */
  async restart(
    index: number,
    beforeStop?: (server: ServerProcess) => Promise<void>,
    signal: "SIGTERM" | "SIGKILL" = "SIGTERM",
  ): Promise<void> {
    this.draining.add(index);
    await expect.poll(() => this.running[index], { interval: 2, timeout: 10_000 }).toBe(0);
    const old = this.servers[index] as ServerProcess;
    await beforeStop?.(old);
    const code = await old.stop(signal);
    if (signal === "SIGTERM") expect(code).toBe(0);
    this.servers[index] = await start();
    this.draining.delete(index);
  }

  stop(): Promise<unknown> {
    return Promise.all(this.servers.map((s) => s.stop()));
  }
}

const fleet = new Fleet();
beforeAll(() => fleet.start());
afterAll(() => fleet.stop());

const propagationMs = 100;
/** While the applier is replaced: another instance's election (250 ms) and first pass, with room for a loaded machine. */
const takeoverMs = 1000;
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

async function applierRole(server: ServerProcess): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return Number(/^cache_applier (\d+)/m.exec(text)?.[1] ?? 0);
}

async function metrics(server: ServerProcess): Promise<{ hits: number; misses: number; retired: number }> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);
  return {
    hits: value(/^cache_requests_total\{procedure="orders.count",result="hit"\} (\d+)/m),
    misses: value(/^cache_requests_total\{procedure="orders.count",result="miss"\} (\d+)/m),
    retired: value(/^cache_retire_all_total (\d+)/m),
  };
}

describe("three instances, one truth", () => {
  it("serve no stale read through API and psql writes, a Valkey cut, an applier killed and a rolling restart", async () => {
    const base = new Map<Key, number>();
    for (const key of [...customers, "all"] as Key[])
      base.set(key, await count(fleet.servers[1] as ServerProcess, key));
    const writes: Write[] = [];
    const reads: Read[] = [];
    let done = false;
    let applierKilledAt = Number.POSITIVE_INFINITY;

    const apiWriter = async () => {
      while (!done) {
        const customer = pick(customers);
        const start = now();
        const status = await fleet.on(async (server) => {
          const res = await fetch(`${server.url}/add/`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ customerid: customer, netamount: 1, tax: 0.08 }),
          });
          await res.arrayBuffer();
          return res.status;
        });
        expect(status).toBe(200);
        writes.push({ via: "api", customer, start, end: now() });
        await new Promise((resolve) => setTimeout(resolve, 20)); // pacing, not synchronization
      }
    };
    const psqlWriter = async () => {
      while (!done) {
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
      while (!done) {
        const key = pick<Key>([...customers, "all"]);
        const start = now();
        const [server, value] = await fleet.on(async (s, i) => [i, await count(s, key)] as const);
        reads.push({ server, key, start, end: now(), value });
      }
    };
    const at = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms)); // the scenario's timeline
    const scenario = async () => {
      await at(1500);
      valkeyProxy.cut();
      await at(1000);
      valkeyProxy.restore();
      await at(1500);
      const roles = await Promise.all(fleet.servers.map((s) => applierRole(s)));
      expect(roles.filter((role) => role === 1)).toHaveLength(1);
      applierKilledAt = now();
      await fleet.restart(roles.indexOf(1), undefined, "SIGKILL");
      await at(1500);
      for (const index of [0, 1, 2]) await fleet.restart(index);
      await at(1000);
      done = true;
    };
    await Promise.all([scenario(), apiWriter(), psqlWriter(), ...Array.from({ length: 6 }, reader)]);

    const affects = (w: Write, key: Key) => key === "all" || w.customer === key;
    const stale = reads.filter((r) => {
      const mustSee = writes.filter(
        (w) =>
          affects(w, r.key) &&
          (w.via === "api"
            ? w.end
            : w.end +
              (w.end >= applierKilledAt - propagationMs && w.end <= applierKilledAt + takeoverMs
                ? takeoverMs
                : propagationMs)) <= r.start,
      );
      return r.value < (base.get(r.key) ?? 0) + mustSee.length;
    });
    const impossible = reads.filter(
      (r) => r.value > (base.get(r.key) ?? 0) + writes.filter((w) => affects(w, r.key) && w.start <= r.end).length,
    );
    console.log(
      `history: ${reads.length} reads on 3 instances, ${writes.filter((w) => w.via === "api").length} API writes, ` +
        `${writes.filter((w) => w.via === "psql").length} psql writes, through a Valkey cut, an applier killed ` +
        `and a rolling restart; stale reads: ${stale.length}`,
    );
    expect(writes.filter((w) => w.via === "api").length).toBeGreaterThan(20);
    expect(writes.filter((w) => w.via === "psql").length).toBeGreaterThan(10);
    expect(reads.length).toBeGreaterThan(1000);
    expect(stale).toEqual([]);
    expect(impossible).toEqual([]);
    const [{ n: total } = { n: 0 }] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders`;
    expect(total).toBe((base.get("all") ?? 0) + writes.length);
  }, 120_000);

  it("keep the cache warm through a rolling restart under read load: ≥ 90 % hits, no epoch bump", async () => {
    // Enough keys that retiring them all shows: every entry would be missed again after each restart.
    const keys: Key[] = ["all", ...Array.from({ length: 1000 }, (_, i) => 100 + i)];
    const warming = [...keys];
    const warmer = async () => {
      for (let key = warming.pop(); key !== undefined; key = warming.pop()) await fleet.on((s) => count(s, key));
    };
    await Promise.all(Array.from({ length: 8 }, warmer));
    const epochBefore = await valkey.get(tagKey(prefix, epochTag));
    const totals = { hits: 0, misses: 0, retired: 0 };
    const add = (m: { hits: number; misses: number; retired: number }, sign: 1 | -1) => {
      totals.hits += sign * m.hits;
      totals.misses += sign * m.misses;
      totals.retired += sign * m.retired;
    };
    for (const server of fleet.servers) add(await metrics(server), -1);

    let done = false;
    const reader = async () => {
      while (!done) {
        const key = pick(keys);
        await fleet.on((s) => count(s, key));
      }
    };
    const restarts = (async () => {
      for (const index of [0, 1, 2]) await fleet.restart(index, async (old) => add(await metrics(old), 1));
      done = true;
    })();
    await Promise.all([restarts, ...Array.from({ length: 8 }, reader)]);
    for (const server of fleet.servers) add(await metrics(server), 1);

    const rate = totals.hits / (totals.hits + totals.misses);
    console.log(
      `rolling restart of 3 instances under read load: ${totals.hits + totals.misses} reads, hit rate ` +
        `${(100 * rate).toFixed(1)} %, epoch bumps ${totals.retired} (${(totals.retired / 3).toFixed(1)} per restart)`,
    );
    expect(totals.hits + totals.misses).toBeGreaterThan(1000);
    expect(rate).toBeGreaterThanOrEqual(0.9);
    expect(totals.retired).toBe(0);
    expect(await valkey.get(tagKey(prefix, epochTag))).toBe(epochBefore);
  });
});
