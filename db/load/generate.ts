// A deterministic dataset of dellstore's shape, generated inside PostgreSQL
// (generate_series): no rows cross the wire, so millions load at COPY speed or
// better, and the same SQL runs on the embedded PGlite.
import { sql } from "drizzle-orm";
import type { Database } from "../client.ts";
import { customers as customersTable, orders as ordersTable } from "../schema.ts";
import {
  advanceSequencesSql,
  assertEmpty,
  deferOrdersConstraintsSql,
  noStatementTimeoutSql,
  resetTablesSql,
  restoreOrdersConstraintsSql,
} from "./tables.ts";

export interface GenerateOptions {
  customers: number;
  orders: number;
  /** Empty both tables first instead of refusing to load into data. */
  reset?: boolean;
}

export const defaultDataset = { customers: 20_000, orders: 12_000 } as const;

// Upper-case letters derived from md5: stable across runs and servers.
const letters = (seed: string, length: number) =>
  `translate(upper(substr(md5('${seed}' || i), 1, ${length})), '0123456789', 'QRSTUVWXYZ')`;

const insertCustomers = (count: number) => `
INSERT INTO customers (customerid, firstname, lastname, address1, address2, city, state, zip, country,
  region, email, phone, creditcardtype, creditcard, creditcardexpiration, username, password, age, income, gender)
SELECT i, firstname, lastname, phone || ' Dell Way', NULL, city,
  CASE WHEN domestic THEN (ARRAY['AK','AL','AR','AZ','CA','CO','CT','DE','FL','GA','HI','IA','ID','IL','IN','KS',
    'KY','LA','MA','MD','ME','MI','MN','MO','MS','MT','NC','ND','NE','NH','NJ','NM','NV','NY','OH','OK','OR','PA',
    'RI','SC','SD','TN','TX','UT','VA','VT','WA','WI','WV','WY'])[1 + i % 50] END,
  CASE WHEN domestic THEN 10000 + (i * 7919) % 90000 END,
  CASE WHEN domestic THEN 'US' ELSE (ARRAY['Australia','Canada','Chile','China','France','Germany','Japan',
    'Russia','South Africa','UK'])[1 + i % 10] END,
  CASE WHEN domestic THEN 1 ELSE 2 END,
  lastname || '@dell.com', phone, 1 + i % 5,
  lpad(((i * 982451653) % 10000000000000000)::text, 16, '0'),
  (2008 + i % 5) || '/' || lpad((1 + i % 12)::text, 2, '0'),
  'user' || i, 'password', 18 + i % 73, 20000 * (1 + i % 5), CASE WHEN i % 2 = 0 THEN 'M' ELSE 'F' END
FROM generate_series(1::bigint, ${count}::bigint) AS i,
  LATERAL (SELECT ${letters("first", 6)} AS firstname, ${letters("last", 10)} AS lastname,
    ${letters("city", 7)} AS city, lpad(((i * 2654435761) % 10000000000)::text, 10, '0') AS phone,
    i <= (${count} + 1) / 2 AS domestic) AS f`;

// Orders spread evenly over the twelve months of 2004 (1,000 a month for
// 12,000), each month's orders evenly over its days; customers are picked by
// hashing the order id, so orders spread over the whole id range and some
// customers have several, as in the real dump.
const insertOrders = (count: number, customers: number) => `
INSERT INTO orders (orderid, orderdate, customerid, netamount, tax, totalamount)
SELECT j, orderdate, customerid, net, tax, net + tax
FROM generate_series(1::bigint, ${count}::bigint) AS j,
  LATERAL (SELECT ((j - 1) * 12) / ${count} AS m) AS month,
  LATERAL (SELECT (m * ${count} + 11) / 12 AS first, ((m + 1) * ${count} + 11) / 12 AS next,
    date '2004-01-01' + make_interval(months => m::int) AS start) AS bounds,
  LATERAL (SELECT extract(day FROM start + interval '1 month' - interval '1 day')::bigint AS days) AS dim,
  LATERAL (SELECT (start + make_interval(days => (((j - 1 - first) * days) / (next - first))::int))::date AS orderdate,
    1 + ('x' || substr(md5('customer' || j), 1, 8))::bit(32)::bigint % ${customers} AS customerid,
    (((j * 48271) % 39900 + 100) / 100.0)::numeric(12, 2) AS net) AS o,
  LATERAL (SELECT round(net * 0.0825, 2)::numeric(12, 2) AS tax) AS t`;

export async function generateDataset(
  db: Database,
  options: GenerateOptions,
): Promise<{ customers: number; orders: number }> {
  const { customers, orders } = options;
  if (!Number.isSafeInteger(customers) || customers < 1) throw new RangeError("--customers must be a positive integer");
  if (!Number.isSafeInteger(orders) || orders < 0) throw new RangeError("--orders must be a non-negative integer");
  await db.transaction(async (tx) => {
    await tx.execute(sql.raw(noStatementTimeoutSql));
    if (options.reset) await tx.execute(sql.raw(resetTablesSql));
    else assertEmpty({ customers: await tx.$count(customersTable), orders: await tx.$count(ordersTable) });
    await tx.execute(sql.raw(insertCustomers(customers)));
    for (const statement of deferOrdersConstraintsSql) await tx.execute(sql.raw(statement));
    if (orders > 0) await tx.execute(sql.raw(insertOrders(orders, customers)));
    await tx.execute(sql.raw(restoreOrdersConstraintsSql));
    await tx.execute(sql.raw(advanceSequencesSql));
  });
  return { customers, orders };
}
