// The order aggregates (migration 0002) equal a fresh count(*) / sum() over
// orders after any sequence of writes, whoever makes them: the API, SQL
// INSERT / UPDATE / DELETE / TRUNCATE / COPY, concurrent transactions, rollbacks.
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import fc from "fast-check";
import postgres from "postgres";
import { describe, expect, inject, it } from "vitest";
import { migrationsFolder } from "../db/client.ts";
import { loadDump } from "../db/load/dump.ts";
import { generateDataset } from "../db/load/generate.ts";
import { useApp } from "./support/app.ts";
import { createTestDatabase, useTestDatabase } from "./support/database.ts";
import { fixturePath } from "./support/dump-writer.ts";
import { run } from "./support/run.ts";
import { cachePrefix } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: cachePrefix() }));

/** Applies the committed migrations up to and including `last`, as a database deployed before the later ones. */
async function migrateUpTo(url: string, last: string): Promise<void> {
  const folder = await mkdtemp(join(tmpdir(), "migrations-"));
  try {
    await cp(migrationsFolder, folder, { recursive: true });
    const journalPath = join(folder, "meta", "_journal.json");
    const journal = JSON.parse(await readFile(journalPath, "utf8")) as { entries: { tag: string }[] };
    journal.entries = journal.entries.slice(0, journal.entries.findIndex((entry) => entry.tag === last) + 1);
    await writeFile(journalPath, JSON.stringify(journal));
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await migrate(drizzle(sql), { migrationsFolder: folder });
    } finally {
      await sql.end();
    }
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/** Rows where the aggregates and a fresh computation over orders disagree (none when exact). */
async function drift(sql: postgres.Sql | postgres.TransactionSql) {
  const months = await sql`
    WITH fresh AS (SELECT date_trunc('month', orderdate)::date AS month, count(*)::int AS orders,
        sum(totalamount) AS revenue FROM orders GROUP BY 1),
      kept AS (SELECT month, sum(orders)::int AS orders, sum(revenue) AS revenue FROM order_monthly_stats
        GROUP BY 1 HAVING sum(orders) <> 0 OR sum(revenue) <> 0)
    SELECT to_char(month, 'YYYY-MM') AS month, fresh.orders AS fresh_orders, kept.orders AS kept_orders,
        fresh.revenue::text AS fresh_revenue, kept.revenue::text AS kept_revenue
      FROM fresh FULL JOIN kept USING (month)
      WHERE fresh.orders IS DISTINCT FROM kept.orders OR fresh.revenue IS DISTINCT FROM kept.revenue LIMIT 5`;
  const customers = await sql`
    WITH fresh AS (SELECT customerid, count(*)::bigint AS orders, sum(totalamount) AS total_spent,
        max(orderdate) AS last_order_date FROM orders WHERE customerid IS NOT NULL GROUP BY 1)
    SELECT customerid, fresh.orders AS fresh_orders, kept.orders AS kept_orders, fresh.total_spent::text AS fresh_total,
        kept.total_spent::text AS kept_total, fresh.last_order_date::text AS fresh_last, kept.last_order_date::text AS kept_last
      FROM fresh FULL JOIN customer_order_stats AS kept USING (customerid)
      WHERE fresh.orders IS DISTINCT FROM kept.orders OR fresh.total_spent IS DISTINCT FROM kept.total_spent
        OR fresh.last_order_date IS DISTINCT FROM kept.last_order_date LIMIT 5`;
  return { months: [...months], customers: [...customers] };
}

// Few customers and a span of two year ends, so writes collide on rows and cross months and years.
const customerId = fc.oneof(fc.integer({ min: 1, max: 12 }), fc.constant(null));
const orderDate = fc
  .integer({ min: 0, max: 500 })
  .map((days) => new Date(Date.UTC(2003, 11, 1) + days * 86_400_000).toISOString().slice(0, 10));
const cents = fc.integer({ min: 1, max: 99_999 });
const money = (c: number) => (c / 100).toFixed(2);
const order = fc.record({ customerId, orderDate, net: cents, tax: cents });
type Order = typeof order extends fc.Arbitrary<infer T> ? T : never;
const values = (orders: Order[]) =>
  orders.map((o) => [o.orderDate, o.customerId, money(o.net), money(o.tax), money(o.net + o.tax)] as const);

// Some of the orders of one customer (or of none): "orderid % m = r" picks a spread-out share.
const someOrders = fc.record({ customerId, modulo: fc.integer({ min: 1, max: 4 }) });
const where = (sql: postgres.Sql | postgres.TransactionSql, s: { customerId: number | null; modulo: number }) =>
  sql`${s.customerId === null ? sql`customerid IS NULL` : sql`customerid = ${s.customerId}`} AND orderid % ${s.modulo} = 0`;

type Sql = postgres.Sql | postgres.TransactionSql;
type Statement = (sql: Sql) => Promise<unknown>;
const statement: fc.Arbitrary<{ name: string; run: Statement }> = fc.oneof(
  fc.array(order, { minLength: 1, maxLength: 5 }).map((orders) => ({
    name: `INSERT ${orders.length} orders`,
    run: (sql: Sql) =>
      sql`INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount) VALUES ${sql(values(orders))}`,
  })),
  fc.record({ from: someOrders, to: customerId }).map(({ from, to }) => ({
    name: `UPDATE customer ${JSON.stringify(from)} → ${to}`,
    run: (sql: Sql) => sql`UPDATE orders SET customerid = ${to} WHERE ${where(sql, from)}`,
  })),
  fc.record({ of: someOrders, days: fc.integer({ min: -400, max: 400 }) }).map(({ of, days }) => ({
    name: `UPDATE date ${JSON.stringify(of)} by ${days} days`,
    run: (sql: Sql) => sql`UPDATE orders SET orderdate = orderdate + ${days}::int WHERE ${where(sql, of)}`,
  })),
  fc.record({ of: someOrders, by: fc.integer({ min: -100, max: 10_000 }) }).map(({ of, by }) => ({
    name: `UPDATE amounts ${JSON.stringify(of)} by ${by} cents`,
    run: (sql: Sql) =>
      sql`UPDATE orders SET netamount = netamount + ${money(by)}::numeric, totalamount = totalamount + ${money(by)}::numeric
        WHERE ${where(sql, of)}`,
  })),
  fc.record({ of: someOrders, to: customerId, date: orderDate }).map(({ of, to, date }) => ({
    name: `UPDATE customer and date ${JSON.stringify(of)} → ${to}, ${date}`,
    run: (sql: Sql) => sql`UPDATE orders SET customerid = ${to}, orderdate = ${date} WHERE ${where(sql, of)}`,
  })),
  someOrders.map((of) => ({
    name: `DELETE ${JSON.stringify(of)}`,
    run: (sql: Sql) => sql`DELETE FROM orders WHERE ${where(sql, of)}`,
  })),
  fc.array(order, { minLength: 1, maxLength: 20 }).map((orders) => ({
    name: `COPY ${orders.length} orders`,
    run: async (sql: Sql) => {
      const rows = values(orders).map((row) => `${row.map((v) => v ?? "\\N").join("\t")}\n`);
      const writable =
        await sql`COPY orders (orderdate, customerid, netamount, tax, totalamount) FROM STDIN`.writable();
      await pipeline(Readable.from(rows), writable);
    },
  })),
);

const isDeadlock = (error: unknown) => (error as { code?: string }).code === "40P01";
const rolledBack = new Error("rolled back on purpose");

type Step = { name: string; run: () => Promise<unknown> };
// Counterexamples print as the steps' names.
const named = <T extends { name: string }>(value: T) => Object.assign(value, { [fc.toStringMethod]: () => value.name });
const step: fc.Arbitrary<Step> = fc
  .oneof(
    { weight: 3, arbitrary: statement.map((s) => ({ name: s.name, run: () => s.run(db.sql) })) },
    {
      weight: 2,
      arbitrary: order.map((o) => ({
        name: `POST /add/ ${JSON.stringify(o)}`,
        run: async () => {
          const res = await fetch(`${server.url}/add/`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              orderdate: o.orderDate,
              customerid: o.customerId ?? 1,
              netamount: money(o.net),
              tax: money(o.tax),
            }),
          });
          expect(res.status, await res.text()).toBe(200);
        },
      })),
    },
    {
      weight: 2,
      // Transactions side by side on their own connections, each with a few statements, some rolled back.
      arbitrary: fc
        .array(fc.record({ statements: fc.array(statement, { minLength: 1, maxLength: 3 }), commit: fc.boolean() }), {
          minLength: 2,
          maxLength: 3,
        })
        .map((transactions) => ({
          name: `concurrently: ${transactions.map((t) => `[${t.statements.map((s) => s.name).join("; ")}] ${t.commit ? "COMMIT" : "ROLLBACK"}`).join(" | ")}`,
          run: () =>
            Promise.all(
              transactions.map((t) =>
                db.sql
                  .begin(async (tx) => {
                    for (const s of t.statements) await s.run(tx);
                    if (!t.commit) throw rolledBack;
                  })
                  // A deadlock between the transactions' own row locks aborts one of them: a rollback too.
                  .catch((error) => {
                    if (error !== rolledBack && !isDeadlock(error)) throw error;
                  }),
              ),
            ),
        })),
    },
    { weight: 1, arbitrary: fc.constant({ name: "TRUNCATE orders", run: () => db.sql`TRUNCATE orders` }) },
  )
  .map(named);

describe("the order aggregates", () => {
  it("equal count(*) and sum() over orders after every step of any sequence of writes", async () => {
    expect(await drift(db.sql)).toEqual({ months: [], customers: [] });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 8 }), async (steps) => {
        for (const s of steps) {
          await s.run();
          expect(await drift(db.sql), `after ${s.name}`).toEqual({ months: [], customers: [] });
        }
        // What the API serves from them, uncached, is the same.
        const res = await fetch(`${server.url}/count`, { headers: { "cache-control": "no-store" } });
        const [fresh] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders`;
        expect(await res.json()).toEqual({ count: fresh?.n });
      }),
      { numRuns: 40 },
    );
  }, 90_000);

  it("let go of a deleted customer's orders (ON DELETE SET NULL)", async () => {
    // Its own orders: the property above may have left the table empty (a TRUNCATE step).
    const [c] = await db.sql<{ id: number }[]>`SELECT max(customerid)::int AS id FROM customers`;
    const id = c?.id as number;
    await db.sql`INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount)
      VALUES ('2004-03-01', ${id}, 10, 1, 11), ('2005-01-02', ${id}, 20, 2, 22)`;
    expect(await db.sql`SELECT 1 FROM customer_order_stats WHERE customerid = ${id}`).toHaveLength(1);
    await db.sql`DELETE FROM customers WHERE customerid = ${id}`;
    expect(await db.sql`SELECT 1 FROM customer_order_stats WHERE customerid = ${id}`).toHaveLength(0);
    expect(await drift(db.sql)).toEqual({ months: [], customers: [] });
  });
});

describe("bulk loads", () => {
  it("leave the aggregates exact: the dump loader (COPY) and the generator, with --reset over data", async () => {
    const target = await createTestDatabase("empty");
    try {
      await loadDump(target.sql, fixturePath);
      expect(await drift(target.sql)).toEqual({ months: [], customers: [] });
      const [loaded] = await target.sql`SELECT sum(orders)::int AS n FROM order_monthly_stats`;
      expect(loaded?.n).toBeGreaterThan(0);
      await generateDataset(target.handle.db, { customers: 500, orders: 5000, reset: true });
      expect(await drift(target.sql)).toEqual({ months: [], customers: [] });
      const [generated] = await target.sql`SELECT sum(orders)::int AS n FROM order_monthly_stats`;
      expect(generated?.n).toBe(5000);
    } finally {
      await target.drop();
    }
  });
});

describe("migrating a database that already holds orders", () => {
  it("fills the aggregates from them, and npm run db:aggregates reports and fixes drift", async () => {
    const old = await createTestDatabase("blank");
    try {
      // The database as it was before migration 0002, holding orders.
      await migrateUpTo(old.url, "0001_orders_change_notify");
      await generateDataset(old.handle.db, { customers: 300, orders: 2000 });
      const seeded = await run("npm", ["run", "-s", "db:seed", "--", "--if-empty"], { DATABASE_URL: old.url });
      expect(seeded.code, seeded.stderr).toBe(0);
      expect(seeded.stdout).toMatch(/already holds data/);
      expect(await drift(old.sql)).toEqual({ months: [], customers: [] });
      const [total] = await old.sql`SELECT sum(orders)::int AS n FROM order_monthly_stats`;
      expect(total?.n).toBe(2000);

      // As after restoring a backup taken without the triggers.
      await old.sql.unsafe(`
        UPDATE customer_order_stats SET orders = orders + 1 WHERE customerid <= 3;
        DELETE FROM order_monthly_stats WHERE month = '2004-02-01'`);
      const check = await run("npm", ["run", "-s", "db:aggregates", "--", "--check"], { DATABASE_URL: old.url });
      expect(check.code, check.stderr).toBe(1);
      expect(check.stdout).toMatch(/have drifted: 1 month and 3 customers differ from orders/);
      expect((await drift(old.sql)).customers).toHaveLength(3);
      const rebuilt = await run("npm", ["run", "-s", "db:aggregates"], { DATABASE_URL: old.url });
      expect(rebuilt.code, rebuilt.stderr).toBe(0);
      expect(rebuilt.stdout).toMatch(/had drifted: 1 month and 3 customers rebuilt from orders/);
      expect(await drift(old.sql)).toEqual({ months: [], customers: [] });
      const again = await run("npm", ["run", "-s", "db:aggregates", "--", "--check"], { DATABASE_URL: old.url });
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/exact: nothing to fix/);
    } finally {
      await old.drop();
    }
  }, 60_000);
});

describe("npm run db:aggregates under a running, caching server", () => {
  /** Polls `read` until it returns `expected`, for at most `ms`; the last value read otherwise. */
  async function settlesTo<T>(read: () => Promise<T>, expected: T, ms: number): Promise<T> {
    const until = Date.now() + ms;
    let last = await read();
    while (!Object.is(JSON.stringify(last), JSON.stringify(expected)) && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      last = await read();
    }
    return last;
  }

  it("logs a change for what it repaired, so cached counts are right within seconds, not at their TTL", async () => {
    // A customer and a year of their own: the seeded orders are of 2004, the property test above
    // writes customers 1-12 around it, and this customer has no orders yet.
    const [free] = await db.sql<{ id: number }[]>`
      SELECT customerid AS id FROM customers AS c
      WHERE customerid > 12 AND NOT EXISTS (SELECT 1 FROM orders AS o WHERE o.customerid = c.customerid)
      ORDER BY customerid LIMIT 1`;
    const customerId = free?.id as number;
    const year = 1998;
    const reads = async () => {
      const [count, summary, monthly] = await Promise.all([
        server.client.orders.count.query({ customerId }),
        server.client.customers.summary.query({ customerId }),
        server.client.orders.monthly.query({ year }),
      ]);
      return { count: count.count, orders: summary.orders, inMarch: monthly[0]?.orders };
    };
    // The orders go in through the triggers; then, in the same transaction, rows of both aggregates
    // are made wrong behind them, as a restore without the triggers would leave them.
    await db.sql.begin(async (tx) => {
      await tx`INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount)
        VALUES ('1998-03-01', ${customerId}, 10, 1, 11), ('1998-03-02', ${customerId}, 20, 2, 22)`;
      await tx`UPDATE customer_order_stats SET orders = orders + 5, total_spent = total_spent + 50
        WHERE customerid = ${customerId}`;
      await tx`UPDATE order_monthly_stats SET orders = orders + 5, revenue = revenue + 50 WHERE month = '1998-03-01'`;
    });
    // The insert's change reaches the cache, which then holds the drifted counts.
    const drifted = { count: 7, orders: 7, inMarch: 7 };
    expect(await settlesTo(reads, drifted, 5000)).toEqual(drifted);
    expect(await reads()).toEqual(drifted);

    // The applier prunes the change log once applied: a copy of each row logged from here on stays to be read.
    await db.sql.unsafe(`
      CREATE TABLE logged_changes (xid xid8, tags text[]);
      CREATE FUNCTION copy_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO logged_changes VALUES (NEW.xid, NEW.tags); RETURN NULL; END $$;
      CREATE TRIGGER copy_change AFTER INSERT ON cache.change_log FOR EACH ROW EXECUTE FUNCTION copy_change();`);
    try {
      const rebuilt = await run("npm", ["run", "-s", "db:aggregates"], { DATABASE_URL: db.url });
      expect(rebuilt.code, rebuilt.stderr).toBe(0);
      expect(rebuilt.stdout).toMatch(/had drifted: 1 month and 1 customer rebuilt from orders/);
    } finally {
      await db.sql.unsafe("DROP TRIGGER copy_change ON cache.change_log; DROP FUNCTION copy_change();");
    }
    // The repair named exactly what it fixed: the year's and the customer's tags (and the total's).
    const logged = await db.sql<{ tags: string[] }[]>`SELECT tags FROM logged_changes`;
    expect(logged.map((row) => row.tags)).toEqual([
      ["orders:all", `orders:year:${year}`, `orders:customer:${customerId}`],
    ]);

    const repaired = { count: 2, orders: 2, inMarch: 2 };
    expect(await settlesTo(reads, repaired, 3000)).toEqual(repaired);
  }, 60_000);
});
