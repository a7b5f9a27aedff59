// A read that bypasses the cache (here: it asks so, with Cache-Control: no-store)
// never joins a database read that began before it arrived. Two instances over
// real PostgreSQL: B's first read is answered by PostgreSQL but its answer is
// held at a TCP proxy; A acknowledges a write; a read arriving at B after that
// acknowledgement must see the write, not share the first read's older answer.
import { describe, expect, inject, it } from "vitest";
import { connectPostgres } from "../db/client.ts";
import { startTestApp, type TestApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { useFixture } from "./support/fixture.ts";
import { useProxy } from "./support/tcp-proxy.ts";
import { cachePrefix } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const poolProxy = useProxy(() => db.url, 5432);
const readerName = "linearizable-reader";

const apps = useFixture(
  async () => {
    const env = { VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: cachePrefix() };
    const a = await startTestApp({ ...env, DATABASE_URL: db.url });
    // B reads through a proxy, with one pool connection.
    const pool = connectPostgres(poolProxy.url(db.url), { max: 1, applicationName: readerName });
    const b = await startTestApp({ ...env, DATABASE_URL: db.url }, { database: pool });
    return { a, b };
  },
  async ({ a, b }) => {
    await Promise.all([a.close(), b.close()]);
  },
);

const count = async (app: TestApp, customerId: number) => {
  const res = await fetch(`${app.url}/count?customerid=${customerId}`, { headers: { "cache-control": "no-store" } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { count: number }).count;
};
const misses = async (app: TestApp) => {
  const text = await (await fetch(`${app.url}/metrics`)).text();
  return Number(/^cache_requests_total\{procedure="orders.count",result="miss"\} (\d+)/m.exec(text)?.[1] ?? 0);
};

describe("a read that bypasses the cache", () => {
  it("sees a write another instance acknowledged before it arrived, even while an older read is in flight", async () => {
    const { a, b } = apps;
    const customerId = 50;
    const before = await count(b, customerId); // bypassing: from PostgreSQL, and opens B's one connection

    // B's first read runs in PostgreSQL before the write; its answer waits at the proxy.
    const [{ since } = { since: "" }] = await db.sql<{ since: string }[]>`SELECT clock_timestamp()::text AS since`;
    // B has one pool connection, and only it goes through this proxy: the first bytes it sends now are the read's.
    const held = poolProxy.holdRepliesAfter("");
    const first = count(b, customerId);
    await held;
    await expect
      .poll(
        async () =>
          (
            await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE application_name = ${readerName} AND query ILIKE '%customer_order_stats%'
                AND query_start > ${since}::timestamptz AND state = 'idle'`
          )[0]?.n,
        { interval: 5, timeout: 5000 },
      )
      .toBe(1);

    const res = await fetch(`${a.url}/add/`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ customerid: customerId, netamount: 1, tax: 0.08 }),
    });
    expect(res.status).toBe(200); // acknowledged

    const arrivals = await misses(b);
    const second = count(b, customerId);
    await expect.poll(() => misses(b), { interval: 2 }).toBe(arrivals + 1); // the second read is in B
    poolProxy.restore();

    expect(await first).toBe(before);
    expect(await second).toBe(before + 1);
  });
});
