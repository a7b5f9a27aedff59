// Writes made outside the app (psql) reach the cache through the change log
// the orders triggers append to, applied at once: they wake the applier.
import { describe, expect, inject, it } from "vitest";
import { measurePropagation } from "../bench/propagation-trials.ts";
import { generateDataset } from "../db/load/generate.ts";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { run } from "./support/run.ts";
import { cachePrefix } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: cachePrefix() }));

const psql = async (statement: string) => {
  const result = await run("psql", [db.url, "-v", "ON_ERROR_STOP=1", "-qc", statement]);
  expect(result.code, result.stderr).toBe(0);
};
const apiCount = async (customerId?: number) => {
  const res = await fetch(`${server.url}/count${customerId === undefined ? "" : `?customerid=${customerId}`}`);
  return ((await res.json()) as { count: number }).count;
};
const truth = async (customerId: number) =>
  (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders WHERE customerid = ${customerId}`)[0]?.n;
const metric = async (name: string) =>
  Number(new RegExp(`^${name} (\\d+)`, "m").exec(await (await fetch(`${server.url}/metrics`)).text())?.[1] ?? 0);
const health = async () => (await (await fetch(`${server.url}/health`)).json()) as Record<string, string>;

describe("writes made with psql", () => {
  it("INSERT, UPDATE to another customer, and DELETE show in the cached counts", async () => {
    await expect.poll(async () => (await health()).changes).toBe("up");
    const [a, b] = [30, 31];
    const before = { a: await apiCount(a), b: await apiCount(b), all: await apiCount() };
    expect(await apiCount(a)).toBe(before.a); // cached now

    await psql(
      `INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount) VALUES ('2004-05-05', ${a}, 10, 0.83, 10.83)`,
    );
    await expect.poll(() => apiCount(a), { timeout: 1000, interval: 5 }).toBe(before.a + 1);
    await expect.poll(() => apiCount(), { timeout: 1000, interval: 5 }).toBe(before.all + 1);

    await psql(
      `UPDATE orders SET customerid = ${b} WHERE orderid = (SELECT max(orderid) FROM orders WHERE customerid = ${a})`,
    );
    await expect.poll(() => apiCount(a), { timeout: 1000, interval: 5 }).toBe(before.a);
    await expect.poll(() => apiCount(b), { timeout: 1000, interval: 5 }).toBe(before.b + 1);

    await psql(`DELETE FROM orders WHERE orderid = (SELECT max(orderid) FROM orders WHERE customerid = ${b})`);
    await expect.poll(() => apiCount(b), { timeout: 1000, interval: 5 }).toBe(before.b);
    await expect.poll(() => apiCount(), { timeout: 1000, interval: 5 }).toBe(before.all);
  });

  // How fast is the benchmark's to say (npm run bench: p99 beside full API write load); here, that each is seen.
  it("are each visible through the API (100 trials; the latencies are logged)", async () => {
    const result = await measurePropagation(server.url, db.sql, 32, 100);
    console.log(
      `psql write → API: p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, max ${result.max.toFixed(1)} ms`,
    );
    expect(result.latencies).toHaveLength(100); // each seen, within the 2 s measurePropagation allows
  });
});

describe("a bulk write", () => {
  it("wakes the applier once, not once per row or per statement", async () => {
    const before = await metric("cache_wakes_total");
    await psql("BEGIN; UPDATE orders SET tax = tax; UPDATE orders SET tax = tax; COMMIT;");
    // A marker sent after it: notifications arrive in commit order, so once the marker has, the
    // transaction's have too.
    await psql("NOTIFY cache_wake");
    await expect.poll(() => metric("cache_wakes_total")).toBe(before + 2);
  });
});

describe("a 100,000-row UPDATE", () => {
  it("is logged as one change that retires everything, and wakes the applier once", async () => {
    await db.sql`TRUNCATE orders, customers RESTART IDENTITY`;
    await generateDataset(db.handle.db, { customers: 20_000, orders: 100_000 });
    await expect.poll(() => apiCount()).toBe(100_000);
    const before = await metric("cache_wakes_total");
    const started = performance.now();
    // Its own statement timeout: 100,000 rows through the triggers take seconds on a loaded machine.
    await db.sql.begin(async (tx) => {
      await tx`SET LOCAL statement_timeout = 0`;
      await tx`UPDATE orders SET customerid = 1 + customerid % 10 WHERE orderid <= 100000`;
    });
    console.log(`100,000-row UPDATE with the change-log trigger: ${(performance.now() - started).toFixed(0)} ms`);
    await expect.poll(() => apiCount(1)).toBe(await truth(1));
    // One wake for the statement (a late one of the test before it may come too), not one per row.
    expect(await metric("cache_wakes_total")).toBeGreaterThanOrEqual(before + 1);
    expect(await metric("cache_wakes_total")).toBeLessThanOrEqual(before + 2);
  });
});
