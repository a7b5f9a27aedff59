// npm run db:seed: the generated dataset's shape, and the command as users type it.
import { describe, expect, it } from "vitest";
import { generateDataset } from "../db/load/generate.ts";
import { createTestDatabase, useTestDatabase } from "./support/database.ts";
import { fixturePath } from "./support/dump-writer.ts";
import { run } from "./support/run.ts";

describe("the generated dataset", () => {
  const db = useTestDatabase("seeded");

  it("has dellstore's shape: 20,000 customers, 12,000 orders over 2004, 1,000 a month", async () => {
    const months =
      await db.sql`SELECT to_char(orderdate, 'YYYY-MM') AS month, count(*)::int AS n FROM orders GROUP BY 1 ORDER BY 1`;
    expect(months).toEqual(
      Array.from({ length: 12 }, (_, m) => ({ month: `2004-${String(m + 1).padStart(2, "0")}`, n: 1000 })),
    );
    const [shape] = await db.sql`
      SELECT (SELECT count(*)::int FROM customers) AS customers,
        count(*)::int AS orders,
        count(*) FILTER (WHERE tax <> round(netamount * 0.0825, 2))::int AS wrong_tax,
        count(*) FILTER (WHERE totalamount <> netamount + tax)::int AS wrong_total,
        min(customerid) AS first_customer, max(customerid) AS last_customer,
        count(DISTINCT customerid)::int AS buyers, min(netamount) > 0 AS positive
      FROM orders`;
    expect(shape).toMatchObject({ customers: 20_000, orders: 12_000, wrong_tax: 0, wrong_total: 0, positive: true });
    expect(shape?.first_customer).toBeLessThan(20);
    expect(shape?.last_customer).toBeGreaterThan(19_980);
    // Spread like the real data: most buyers have one order, some several.
    expect(shape?.buyers).toBeGreaterThan(8_000);
    expect(shape?.buyers).toBeLessThan(12_000);
  });

  it("keeps orders' index and foreign key, which the loader drops and recreates around the bulk insert", async () => {
    const [schema] = await db.sql`
      SELECT (SELECT count(*)::int FROM pg_indexes WHERE tablename = 'orders' AND indexname = 'ix_order_custid') AS indexes,
        (SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'fk_customerid') AS fk`;
    expect(schema).toEqual({
      indexes: 1,
      fk: "FOREIGN KEY (customerid) REFERENCES customers(customerid) ON DELETE SET NULL",
    });
  });

  it("is the same every time", async () => {
    const other = await createTestDatabase("empty");
    try {
      await generateDataset(other.handle.db, { customers: 20_000, orders: 12_000 });
      const digest = (sql: typeof db.sql) =>
        sql`SELECT md5(string_agg(o::text, ',' ORDER BY orderid)) AS o,
              (SELECT md5(string_agg(c::text, ',' ORDER BY customerid)) FROM customers c) AS c FROM orders o`;
      expect(await digest(other.sql)).toEqual(await digest(db.sql));
    } finally {
      await other.drop();
    }
  });
});

describe("npm run db:seed", () => {
  const db = useTestDatabase("empty");
  const seed = (...args: string[]) => run("npm", ["run", "db:seed", "--", ...args], { DATABASE_URL: db.url });
  const counts = async () =>
    (
      await db.sql`SELECT (SELECT count(*)::int FROM customers) AS customers, (SELECT count(*)::int FROM orders) AS orders`
    )[0];

  it("generates the default dataset, then refuses to load over it", async () => {
    const first = await seed();
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain("generated customers: 20000 rows, orders: 12000 rows");
    const again = await seed();
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      /^error: refusing to load: customers holds 20000 rows and orders 12000; run `npm run db:seed -- --reset`/m,
    );
    expect(await counts()).toEqual({ customers: 20_000, orders: 12_000 });
  });

  it("scales with --customers and --orders, replacing the data with --reset", async () => {
    const result = await seed("--reset", "--customers", "500", "--orders", "2400");
    expect(result.code, result.stderr).toBe(0);
    expect(await counts()).toEqual({ customers: 500, orders: 2400 });
    const [perMonth] =
      await db.sql`SELECT min(n)::int AS min, max(n)::int AS max FROM (SELECT count(*) AS n FROM orders GROUP BY date_trunc('month', orderdate)) m`;
    expect(perMonth).toEqual({ min: 200, max: 200 });
  });

  it("loads a dump with --dump and says what it loaded and skipped", async () => {
    const result = await seed("--reset", "--dump", fixturePath);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("loaded customers: 4 rows, orders: 3 rows");
    expect(result.stdout).toContain(
      "skipped: categories (3 rows), cust_hist (3 rows), inventory (3 rows), orderlines (3 rows), products (3 rows), reorder (0 rows)",
    );
    expect(await counts()).toEqual({ customers: 4, orders: 3 });
  });

  it("says nothing of migrating a database that is migrated", async () => {
    const result = await seed("--reset", "--customers", "10", "--orders", "12");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).not.toContain("migrated");
  });

  it("fails in one line, without a stack trace, on a file that is not there or a bad flag", async () => {
    for (const args of [
      ["--dump", "/nonexistent/dump.sql"],
      ["--orders", "many"],
    ]) {
      const result = await seed(...args);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^error: /m);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe("npm run db:seed on a database that isn't migrated", () => {
  it("migrates it first, and says so (in --help too)", async () => {
    const db = await createTestDatabase("blank");
    try {
      const result = await run("npm", ["run", "-s", "db:seed", "--", "--customers", "10", "--orders", "12"], {
        DATABASE_URL: db.url,
      });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout.split("\n")[0]).toMatch(
        /^migrated the database first: .*\/dellstore_test_\w+ had migrations to apply$/,
      );
      expect(result.stdout).toContain("generated customers: 10 rows, orders: 12 rows");
      const [tables] = await db.sql`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`;
      expect(tables?.n).toBe(5);
    } finally {
      await db.drop();
    }
    const help = await run("npm", ["run", "-s", "db:seed", "--", "--help"]);
    expect(help.stdout).toMatch(/A database\s+that isn't migrated is migrated first/);
  });
});
