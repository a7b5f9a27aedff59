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

/** Rebuilds the aggregates from orders and says what had drifted; with `dryRun`, only says. */
export async function rebuildAggregates(db: Database, options: { dryRun?: boolean } = {}): Promise<AggregatesDrift> {
  let drift: AggregatesDrift = { monthsFixed: 0, customersFixed: 0 };
  try {
    await db.transaction(async (tx) => {
      await tx.execute(sql.raw(noStatementTimeoutSql));
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
