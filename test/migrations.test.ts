// The committed migrations produce exactly the contract's tables (with the order aggregates and the idempotency keys) on an empty database.
import { describe, expect, it } from "vitest";
import { createTestDatabase } from "./support/database.ts";
import { run } from "./support/run.ts";

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

function typeName(c: Record<string, unknown>): string {
  if (c.data_type === "character varying") return `varchar(${c.length})`;
  if (c.data_type === "numeric") return `numeric(${c.precision},${c.scale})`;
  return String(c.data_type);
}
