// The cache on a real Valkey-protocol server and real PostgreSQL: fidelity,
// tags, TTL, and what it tells through logs and metrics.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createCaller } from "../server/routers/index.ts";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { cachePrefix, valkeyClient } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const prefix = cachePrefix();
const server = useApp(() => ({ DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: prefix }));
const valkey = valkeyClient();
afterAll(() => valkey.quit());

/** Counts of hit and miss for one procedure, from the server's own /metrics. */
async function cacheCounts(procedure: string): Promise<{ hit: number; miss: number }> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const value = (result: string) =>
    Number(
      new RegExp(`^cache_requests_total\\{procedure="${procedure}",result="${result}"\\} (\\d+)`, "m").exec(
        text,
      )?.[1] ?? 0,
    );
  return { hit: value("hit"), miss: value("miss") };
}

/** Calls `call` twice; the first must miss and the second hit, and both must answer the same. */
async function missThenHit<T>(procedure: string, call: () => Promise<T>): Promise<[T, T]> {
  const start = await cacheCounts(procedure);
  const miss = await call();
  const afterMiss = await cacheCounts(procedure);
  const hit = await call();
  const afterHit = await cacheCounts(procedure);
  expect(afterMiss).toEqual({ hit: start.hit, miss: start.miss + 1 });
  expect(afterHit).toEqual({ hit: start.hit + 1, miss: start.miss + 1 });
  return [miss, hit];
}

const customerWithoutOrders = async () =>
  (
    await db.sql<{ id: number }[]>`SELECT customerid AS id FROM customers c
      WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customerid = c.customerid) ORDER BY customerid DESC LIMIT 1`
  )[0]?.id as number;

describe("a hit answers exactly what the miss answered", () => {
  beforeAll(async () => {
    expect(await server.app.cache.ready(5000)).toBe(true);
  });

  it("through the typed client, types included", async () => {
    const [miss, hit] = await missThenHit("customers.summary", () =>
      server.client.customers.summary.query({ customerId: 2 }),
    );
    expect(hit).toStrictEqual(miss);
    expect(typeof hit.totalSpent).toBe("string");
  });

  it("through the REST routes: an integer count, hit or miss", async () => {
    const [miss, hit] = await missThenHit("orders.count", async () =>
      (await fetch(`${server.url}/count?customerid=3`)).text(),
    );
    expect(hit).toBe(miss);
    expect(hit).toMatch(/^\{"count":\d+\}$/);
  });

  it("through a server-side caller", async () => {
    const caller = createCaller(server.app.context);
    const [miss, hit] = await missThenHit("orders.monthly", () => caller.orders.monthly({ year: 2004 }));
    expect(hit).toStrictEqual(miss);
    expect(hit).toHaveLength(12);
    expect(hit[0]).toEqual({ month: "2004-01", orders: 1000, revenue: expect.stringMatching(/^\d+\.\d\d$/) });
  });

  it("caches zero, null and empty results too", async () => {
    const idle = await customerWithoutOrders();
    const [zero] = await missThenHit("orders.count", () => server.client.orders.count.query({ customerId: idle }));
    expect(zero).toEqual({ count: 0 });
    const [summary, summaryHit] = await missThenHit("customers.summary", () =>
      server.client.customers.summary.query({ customerId: idle }),
    );
    expect(summaryHit).toStrictEqual({ customerId: idle, orders: 0, totalSpent: "0.00", lastOrderDate: null });
    expect(summary).toStrictEqual(summaryHit);
    const [empty] = await missThenHit("orders.monthly", () => server.client.orders.monthly.query({ year: 1999 }));
    expect(empty).toEqual([]);
  });

  it("never caches errors", async () => {
    const before = await cacheCounts("customers.summary");
    for (let i = 0; i < 2; i++) {
      const error = await server.client.customers.summary.query({ customerId: 99_999 }).catch((e) => e);
      expect(error.data.code).toBe("NOT_FOUND");
    }
    expect(await cacheCounts("customers.summary")).toEqual({ hit: before.hit, miss: before.miss + 2 });
  });
});

describe("tags", () => {
  it("a new order retires its customer's, the total's and its year's entries, and nothing else", async () => {
    const idle = await customerWithoutOrders();
    const other = 4;
    const read = () =>
      Promise.all([
        server.client.orders.count.query({ customerId: idle }),
        server.client.orders.count.query(),
        server.client.orders.count.query({ customerId: other }),
        server.client.customers.summary.query({ customerId: idle }),
        server.client.orders.monthly.query({ year: 2004 }),
        server.client.orders.monthly.query({ year: 2005 }),
      ]);
    const [customer, total, otherCount, , months] = await read();
    const hitsBefore = await cacheCounts("orders.count");
    await server.client.orders.add.mutate({
      customerId: idle,
      netAmount: "10.00",
      tax: "0.83",
      orderDate: "2004-06-15",
    });
    const after = await read();
    expect(after[0]).toEqual({ count: customer.count + 1 });
    expect(after[1]).toEqual({ count: total.count + 1 });
    expect(after[2]).toEqual(otherCount);
    expect(after[3]).toMatchObject({ orders: 1, totalSpent: "10.83", lastOrderDate: "2004-06-15" });
    expect(after[4].find((m) => m.month === "2004-06")?.orders).toBe(
      (months.find((m) => m.month === "2004-06")?.orders ?? 0) + 1,
    );
    // Of the three counts read again, only the other customer's was still cached.
    expect((await cacheCounts("orders.count")).hit).toBe(hitsBefore.hit + 1);
  });
});

describe("time to live", () => {
  it("is CACHE_TTL_SECONDS (120 by default) on entries, overridable per procedure", async () => {
    await server.client.orders.count.query({ customerId: 5 });
    await server.client.orders.monthly.query({ year: 2003 });
    const countTtl = await valkey.ttl(`${prefix}:v1:q:orders.count:{"customerId":5}`);
    const monthlyTtl = await valkey.ttl(`${prefix}:v1:q:orders.monthly:{"year":2003}`);
    expect(countTtl).toBeGreaterThan(115);
    expect(countTtl).toBeLessThanOrEqual(120);
    expect(monthlyTtl).toBeGreaterThan(595);
    expect(monthlyTtl).toBeLessThanOrEqual(600);
  });
});

describe("what it tells", () => {
  it("logs each hit, miss, store and invalidation with its key at debug level", async () => {
    server.logs.length = 0;
    await server.client.orders.count.query({ customerId: 6 });
    await server.client.orders.count.query({ customerId: 6 });
    await server.client.orders.add.mutate({ customerId: 6, netAmount: 1, tax: 0 });
    const key = `${prefix}:v1:q:orders.count:{"customerId":6}`;
    // This customer's lines: the applier's passes also bump what earlier tests wrote.
    const mine = (l: Record<string, unknown>) =>
      l.key === key || (Array.isArray(l.tags) && l.tags.includes("orders:customer:6"));
    const lines = server.logs.filter((l) => l.msg.startsWith("cache ") && mine(l)).map((l) => [l.msg, l.key ?? l.tags]);
    expect(lines.slice(0, 4)).toEqual([
      ["cache miss", key],
      ["cache store", key],
      ["cache hit", key],
      ["cache invalidate", expect.arrayContaining(["orders:all", "orders:customer:6"])],
    ]);
    // The applier's pass may bump the same write's tags once more.
    expect(lines.slice(4).every(([msg]) => msg === "cache invalidate")).toBe(true);
  });

  it("exposes the contract's metrics at /metrics", async () => {
    const res = await fetch(`${server.url}/metrics`);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^cache_requests_total\{procedure="orders.count",result="hit"\} [1-9]/m);
    expect(text).toMatch(/^cache_requests_total\{procedure="orders.count",result="miss"\} [1-9]/m);
    expect(text).toMatch(/^cache_invalidations_total [1-9]/m);
    expect(text).toMatch(/^# TYPE cache_errors_total counter/m);
    expect(text).toMatch(
      /^trpc_procedure_duration_seconds_bucket\{le="0.005",procedure="orders.count",type="query",outcome="ok"\} \d+/m,
    );
  });

  it("reports the cache up, and changes made outside the app reaching it, in /health", async () => {
    await expect
      .poll(async () => (await fetch(`${server.url}/health`)).json())
      .toEqual({
        status: "ok",
        database: "up",
        cache: "up",
        changes: "up",
      });
  });
});
