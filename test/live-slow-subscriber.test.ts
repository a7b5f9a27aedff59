// A subscriber that doesn't read costs the server nothing that grows: it is
// sent the latest count when it can take one, never a backlog. Checked where
// it is decided (a subscription that isn't pulled through 500 changes holds
// one value), and from outside: a server process with 200 streams whose
// clients never read, through 1,000 writes, keeps its resident memory.
import { readFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { afterAll, describe, expect, inject, it } from "vitest";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { type ServerProcess, shippedServer, startServerProcess } from "./support/server-process.ts";
import { openSse } from "./support/sse.ts";
import { cachePrefix } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const env = () => ({ DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: cachePrefix() });
const server = useApp(env);

const countOf = async (customerId: number) =>
  Number((await db.sql`SELECT count(*) AS n FROM orders WHERE customerid = ${customerId}`)[0]?.n);
const insert = (customerId: number) =>
  db.sql`INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount) VALUES ('2024-07-01', ${customerId}, 2, 0.2, 2.2)`;

/** `writes` single-row psql inserts for `customerId`, 8 at a time. */
async function writeMany(customerId: number, writes: number): Promise<void> {
  let left = writes;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (left-- > 0) await insert(customerId);
    }),
  );
}

describe("a subscriber that never reads", () => {
  it("holds one value, the latest, however many changes pass while it isn't pulled", async () => {
    const hub = server.app.context.live;
    if (!hub) throw new Error("no live counts");
    const customerId = 777;
    const stalled = hub.subscribe({ customerId });
    await stalled.ready();
    const n = await countOf(customerId);
    expect(stalled.take()?.count).toBe(n);
    // A reader beside it shows when the last change has been published.
    const reader = await openSse(`${server.url}/count/stream?customerid=${customerId}`);
    await writeMany(customerId, 500);
    await reader.waitFor((e) => e.data === JSON.stringify({ count: n + 500 }), { timeoutMs: 30_000 });
    reader.close();
    // Pulled at last: the final count at once, and nothing after it.
    expect(stalled.take()?.count).toBe(n + 500);
    expect(stalled.take()).toBeUndefined();
    stalled.close();
  });
});

describe("200 streams whose clients never read", () => {
  let process: ServerProcess | undefined;
  const sockets: Socket[] = [];
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await process?.stop();
  });

  const rssMb = async (pid: number) =>
    Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;

  it("don't grow the server's resident memory through 1,000 writes", async () => {
    process = await startServerProcess({ ...env(), LOG_LEVEL: "warn" }, shippedServer);
    const pid = process.child.pid as number;
    const { port } = new URL(process.url);
    const customerId = 778;
    const paths = [
      `/count/stream?customerid=${customerId}`,
      "/count/stream",
      `/trpc/orders.watchCount?input=${encodeURIComponent(JSON.stringify({ json: { customerId } }))}`,
      `/trpc/orders.watchCount?input=${encodeURIComponent(JSON.stringify({ json: {} }))}`,
    ];
    for (let i = 0; i < 200; i++) {
      const socket = connect(Number(port), "127.0.0.1");
      socket.write(`GET ${paths[i % paths.length]} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      socket.pause(); // and never read
      sockets.push(socket);
    }
    const metric = async (name: string) =>
      Number(new RegExp(`^${name} (\\S+)$`, "m").exec(await (await fetch(`${process?.url}/metrics`)).text())?.[1]);
    await expect.poll(() => metric("live_subscriptions"), { timeout: 20_000, interval: 50 }).toBe(200);
    // Warm: a first round of writes, so what is measured after is growth, not first use.
    const reader = await openSse(`${process.url}/count/stream?customerid=${customerId}`);
    const n = await countOf(customerId);
    await writeMany(customerId, 200);
    await reader.waitFor((e) => e.data === JSON.stringify({ count: n + 200 }), { timeoutMs: 30_000 });
    const before = await rssMb(pid);
    const eventsBefore = await metric("live_events_total");
    await writeMany(customerId, 1000);
    await reader.waitFor((e) => e.data === JSON.stringify({ count: n + 1200 }), { timeoutMs: 60_000 });
    const after = await rssMb(pid);
    // Events kept flowing to those that read (the reader) while the 200 took none; all are still open.
    expect((await metric("live_events_total")) - eventsBefore).toBeGreaterThan(0);
    expect(await metric("live_subscriptions")).toBe(201);
    reader.close();
    // A queue of 1,000 changes for each of 200 subscribers would be 200,000 events; each is held once here.
    console.info(`server RSS ${before.toFixed(0)} MB before the 1,000 writes, ${after.toFixed(0)} MB after`);
    expect(after - before).toBeLessThan(40);
  }, 120_000);
});
