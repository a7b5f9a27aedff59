// The order aggregates (migration 0002) recomputed from orders: the repair
// after restoring a backup taken without their triggers, and a drift check.
import { sql } from "drizzle-orm";
import { TransactionRollbackError } from "drizzle-orm/errors";
import type { Database } from "./client.ts";
import { noStatementTimeoutSql } from "./load/tables.ts";

export interface AggregatesDrift {
  /** Months whose order count or revenue differed from orders. */
  monthsFixed: number;
  /** Customers whose order count, total or last order date differed. */
  customersFixed: number;
}

// The customers and years whose aggregate rows differ from orders (null when
// none): the comparison order_aggregates_rebuild() makes, as lists, not counts.
const driftedSql = sql`
  SELECT
    (SELECT array_agg(DISTINCT extract(year FROM month)::integer)
      FROM (SELECT orderdate - (extract(day FROM orderdate)::integer - 1) AS month, count(*) AS orders,
              sum(totalamount) AS revenue
            FROM orders GROUP BY 1) AS fresh
      FULL JOIN (SELECT month, sum(orders) AS orders, sum(revenue) AS revenue FROM order_monthly_stats
            GROUP BY 1 HAVING sum(orders) <> 0 OR sum(revenue) <> 0) AS kept USING (month)
      WHERE fresh.orders IS DISTINCT FROM kept.orders OR fresh.revenue IS DISTINCT FROM kept.revenue) AS years,
    (SELECT array_agg(customerid)
      FROM (SELECT customerid, count(*) AS orders, sum(totalamount) AS total_spent, max(orderdate) AS last_order_date
            FROM orders WHERE customerid IS NOT NULL GROUP BY 1) AS fresh
      FULL JOIN customer_order_stats AS kept USING (customerid)
      WHERE fresh.orders IS DISTINCT FROM kept.orders OR fresh.total_spent IS DISTINCT FROM kept.total_spent
        OR fresh.last_order_date IS DISTINCT FROM kept.last_order_date) AS customer_ids`;

/**
 * Rebuilds the aggregates from orders and says what had drifted; with `dryRun`, only says.
 *
 * A repair is a change the caches must hear of: nothing else would tell them,
 * as the aggregates are written behind the orders triggers, and cached counts
 * would stay wrong until their TTL. So the same transaction logs the tags of
 * the customers and years it fixed (cache.order_tags: "orders:all" too, and
 * the epoch "*" past 64 of either), which cover every cached read of the
 * aggregates: orders.count, orders.monthly, customers.summary. It is logged
 * before the rebuild, which leaves no drift to measure, and commits with it.
 */
export async function rebuildAggregates(db: Database, options: { dryRun?: boolean } = {}): Promise<AggregatesDrift> {
  let drift: AggregatesDrift = { monthsFixed: 0, customersFixed: 0 };
  try {
    await db.transaction(async (tx) => {
      await tx.execute(sql.raw(noStatementTimeoutSql));
      // Held till commit (the rebuild takes the same lock): no write to orders
      // between what is logged here and what the rebuild fixes.
      await tx.execute(sql`LOCK TABLE orders IN SHARE MODE`);
      if (!options.dryRun) {
        await tx.execute(sql`
          SELECT cache.changed(cache.order_tags(drifted.customer_ids, drifted.years))
            FROM (${driftedSql}) AS drifted
            WHERE drifted.customer_ids IS NOT NULL OR drifted.years IS NOT NULL`);
      }
      const [row] = await tx
        .select({
          monthsFixed: sql<number>`months_fixed`.mapWith(Number),
          customersFixed: sql<number>`customers_fixed`.mapWith(Number),
        })
        .from(sql`order_aggregates_rebuild()`);
      if (row) drift = row;
      // The same function measures the drift; rolling back keeps it a measurement.
      if (options.dryRun) tx.rollback();
    });
  } catch (error) {
    if (!(options.dryRun && error instanceof TransactionRollbackError)) throw error;
  }
  return drift;
}
