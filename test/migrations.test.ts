// The committed migrations produce exactly the contract's tables (with the order aggregates and the idempotency keys) on an empty database.
import { describe, expect, inject, it } from "vitest";
import { createTestDatabase } from "./support/database.ts";
import { startLocalPostgres } from "./support/local-postgres.ts";
import { run } from "./support/run.ts";
import { freePort } from "./support/server-process.ts";

describe("migrations", () => {
  it("create dellstore's customers and orders, as the contract and the dump define them", async () => {
    const db = await createTestDatabase("blank");
    try {
      await db.handle.migrate();
      await db.handle.migrate(); // a second run is a no-op
      const columns = await db.sql`
        SELECT table_name, column_name, data_type, character_maximum_length AS length,
          numeric_precision AS precision, numeric_scale AS scale, is_nullable = 'YES' AS nullable
        FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`;
      const shape = columns.map((c) => [c.table_name, c.column_name, typeName(c), c.nullable].join(" "));
      expect(shape).toEqual([
        "customer_order_stats customerid integer false",
        "customer_order_stats orders bigint false",
        "customer_order_stats total_spent numeric(20,2) false",
        "customer_order_stats last_order_date date true",
        "customers customerid integer false",
        "customers firstname varchar(50) false",
        "customers lastname varchar(50) false",
        "customers address1 varchar(50) false",
        "customers address2 varchar(50) true",
        "customers city varchar(50) false",
        "customers state varchar(50) true",
        "customers zip integer true",
        "customers country varchar(50) false",
        "customers region smallint false",
        "customers email varchar(50) true",
        "customers phone varchar(50) true",
        "customers creditcardtype integer false",
        "customers creditcard varchar(50) false",
        "customers creditcardexpiration varchar(50) false",
        "customers username varchar(50) false",
        "customers password varchar(50) false",
        "customers age smallint true",
        "customers income integer true",
        "customers gender varchar(1) true",
        "idempotency_keys key varchar(128) false",
        "idempotency_keys fingerprint text false",
        "idempotency_keys order_id integer true",
        "idempotency_keys created_at timestamp with time zone false",
        "idempotency_keys abandoned_attempts ARRAY true",
        "order_monthly_stats month date false",
        "order_monthly_stats slot smallint false",
        "order_monthly_stats orders bigint false",
        "order_monthly_stats revenue numeric(20,2) false",
        "orders orderid integer false",
        "orders orderdate date false",
        "orders customerid integer true",
        "orders netamount numeric(12,2) false",
        "orders tax numeric(12,2) false",
        "orders totalamount numeric(12,2) false",
      ]);
      const indexes = await db.sql`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1`;
      expect(indexes.map((i) => i.indexdef)).toEqual([
        "CREATE UNIQUE INDEX customer_order_stats_pkey ON public.customer_order_stats USING btree (customerid)",
        "CREATE UNIQUE INDEX customers_pkey ON public.customers USING btree (customerid)",
        "CREATE UNIQUE INDEX idempotency_keys_pkey ON public.idempotency_keys USING btree (key)",
        "CREATE UNIQUE INDEX ix_cust_username ON public.customers USING btree (username)",
        "CREATE INDEX ix_idempotency_created ON public.idempotency_keys USING btree (created_at)",
        "CREATE INDEX ix_order_custid ON public.orders USING btree (customerid)",
        "CREATE UNIQUE INDEX order_monthly_stats_pkey ON public.order_monthly_stats USING btree (month, slot)",
        "CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree (orderid)",
      ]);
      const [fk] =
        await db.sql`SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE contype = 'f'`;
      expect(fk).toEqual({
        conname: "fk_customerid",
        def: "FOREIGN KEY (customerid) REFERENCES customers(customerid) ON DELETE SET NULL",
      });
      const serials =
        await db.sql`SELECT pg_get_serial_sequence('customers', 'customerid') AS c, pg_get_serial_sequence('orders', 'orderid') AS o`;
      expect(serials[0]).toEqual({ c: "public.customers_customerid_seq", o: "public.orders_orderid_seq" });
    } finally {
      await db.drop();
    }
  });

  it.each([
    ["npx drizzle-kit migrate", "npx", ["drizzle-kit", "migrate"]],
    ["npm run db:migrate", "npm", ["run", "db:migrate"]],
  ])("apply with `%s` on an empty database", async (_, command, args) => {
    const db = await createTestDatabase("blank");
    try {
      const result = await run(command, args, { DATABASE_URL: db.url });
      expect(result.code, result.stderr).toBe(0);
      const [tables] = await db.sql`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`;
      expect(tables?.n).toBe(5); // customers, orders, two aggregates, idempotency_keys
    } finally {
      await db.drop();
    }
  });
});

describe("npm run db:migrate when it can't", () => {
  /** Its one line on stderr; never the password, never the whole connection string. */
  const migrate = async (url: string, env: Record<string, string> = {}) => {
    const result = await run("npm", ["run", "-s", "db:migrate"], { DATABASE_URL: url, PGPASSWORD: "", ...env });
    expect(result.code).toBe(1);
    expect(result.stderr).not.toMatch(/s3cret|postgres:\/\/|\n\s+at /);
    return result.stderr.trim();
  };

  it("names the server and the database nothing answers for", async () => {
    const port = await freePort();
    expect(await migrate(`postgres://app:s3cret@127.0.0.1:${port}/shop`)).toBe(
      `error: cannot reach PostgreSQL at 127.0.0.1:${port}/shop (connect ECONNREFUSED 127.0.0.1:${port}): ` +
        "is it running there, and are the host and port in DATABASE_URL right?",
    );
    expect(await migrate("postgres://app:s3cret@db.invalid:5432/shop")).toMatch(
      /^error: cannot reach PostgreSQL at db\.invalid:5432\/shop \(getaddrinfo (ENOTFOUND|EAI_AGAIN) db\.invalid\): no host is named db\.invalid; check the host in DATABASE_URL$/,
    );
  });

  it("names a database that doesn't exist, with the createdb line for it", async () => {
    const url = new URL(inject("postgresUrl"));
    url.pathname = "/no_such_database_here";
    url.password = "s3cret";
    const port = url.port || "5432";
    expect(await migrate(url.toString())).toBe(
      `error: PostgreSQL at ${url.hostname}:${port} has no database no_such_database_here ` +
        '(database "no_such_database_here" does not exist): create it with ' +
        `\`createdb -h ${url.hostname}${url.port ? ` -p ${url.port}` : ""} -U ${url.username} no_such_database_here\``,
    );
  });

  it("tells a password PostgreSQL refuses from one the URL doesn't have", async () => {
    // A server of the test's own that checks passwords (the shared one may trust every local connection).
    const guarded = await startLocalPostgres({ password: "the-right-one" });
    try {
      const url = new URL(guarded.url);
      const where = `127.0.0.1:${url.port}/postgres`;
      url.password = "s3cret";
      expect(await migrate(url.toString())).toBe(
        `error: PostgreSQL at ${where} refused the password (password authentication failed for user "postgres"): ` +
          "check the password in DATABASE_URL",
      );
      url.password = "";
      expect(await migrate(url.toString())).toBe(
        `error: PostgreSQL at ${where} asked for a password, and DATABASE_URL has none ` +
          '(password authentication failed for user "postgres"): put it in the URL (as user:password@host) or in PGPASSWORD',
      );
    } finally {
      await guarded.remove();
    }
  }, 60_000);
});

function typeName(c: Record<string, unknown>): string {
  if (c.data_type === "character varying") return `varchar(${c.length})`;
  if (c.data_type === "numeric") return `numeric(${c.precision},${c.scale})`;
  return String(c.data_type);
}
