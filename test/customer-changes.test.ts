// Writes to customers made outside the app (psql) reach the cached
// customers.summary through the customers triggers' change log: a deleted
// or renumbered customer stops answering "0 orders" within 100 ms.
import { describe, expect, inject, it } from "vitest";
import { percentile } from "../bench/environment.ts";
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
const summary = (customerId: number) =>
  server.client.customers.summary
    .query({ customerId })
    .catch((error: { data?: { code?: string } }) => error.data?.code ?? error);
const hits = async () =>
  Number(
    /^cache_requests_total\{procedure="customers.summary",result="hit"\} (\d+)/m.exec(
      await (await fetch(`${server.url}/metrics`)).text(),
    )?.[1] ?? 0,
  );
/** Customers without orders, whose cached summary says "0 orders". */
const idleCustomers = async (n: number) =>
  (
    await db.sql<{ id: number }[]>`
      SELECT customerid AS id FROM customers AS c
      WHERE NOT EXISTS (SELECT 1 FROM orders AS o WHERE o.customerid = c.customerid) ORDER BY customerid DESC LIMIT ${n}`
  ).map((c) => c.id);
const none = (customerId: number) => ({ customerId, orders: 0, totalSpent: "0.00", lastOrderDate: null });
const listening = async () =>
  expect
    .poll(async () => ((await (await fetch(`${server.url}/health`)).json()) as { changes: string }).changes)
    .toBe("up");

describe("writes to customers made with psql", () => {
  it("DELETE of a customer without orders: the cached summary turns NOT_FOUND", async () => {
    await listening();
    const [id] = (await idleCustomers(1)) as [number];
    expect(await summary(id)).toEqual(none(id));
    const before = await hits();
    expect(await summary(id)).toEqual(none(id));
    expect(await hits()).toBe(before + 1); // served from the cache

    await psql(`DELETE FROM customers WHERE customerid = ${id}`);
    await expect.poll(() => summary(id), { timeout: 1000, interval: 5 }).toBe("NOT_FOUND");
  });

  it("UPDATE of a customer's id: the old id turns NOT_FOUND, the new one answers", async () => {
    const [id] = (await idleCustomers(1)) as [number];
    const moved = 900_001;
    expect(await summary(id)).toEqual(none(id));
    expect(await summary(moved)).toBe("NOT_FOUND");

    await psql(`UPDATE customers SET customerid = ${moved} WHERE customerid = ${id}`);
    await expect.poll(() => summary(id), { timeout: 1000, interval: 5 }).toBe("NOT_FOUND");
    expect(await summary(moved)).toEqual(none(moved));

    // And back with an INSERT of the old id: the new row answers at once.
    await psql(`INSERT INTO customers SELECT ${id}, firstname, lastname, address1, address2, city, state, zip, country,
      region, email, phone, creditcardtype, creditcard, creditcardexpiration, username || '_again', password, age,
      income, gender FROM customers WHERE customerid = ${moved}`);
    await expect.poll(() => summary(id), { timeout: 1000, interval: 5 }).toEqual(none(id));
  });

  // How fast is the benchmark's to say; here, that each is seen (the latencies are logged).
  it("each show through the API (100 deletions)", async () => {
    const latencies: number[] = [];
    for (const id of await idleCustomers(100)) {
      await summary(id); // cached now
      await db.sql`DELETE FROM customers WHERE customerid = ${id}`;
      const committed = performance.now();
      while ((await summary(id)) !== "NOT_FOUND") {
        if (performance.now() - committed > 2000) throw new Error(`customer ${id} still answered after 2 s`);
      }
      latencies.push(performance.now() - committed);
    }
    latencies.sort((a, b) => a - b);
    console.log(
      `psql DELETE FROM customers → API: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms`,
    );
    expect(latencies).toHaveLength(100);
  });
});
