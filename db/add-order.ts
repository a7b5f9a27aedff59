// orders.add's database side (migration 0005): add_order() stores the order
// and its idempotency key in one transaction; settle_write() learns, on
// another connection, what became of an attempt whose answer didn't come,
// committing a tombstone when it had stored nothing, so that it never will.
import { sql } from "drizzle-orm";
import { type Database, rowsOf } from "./client.ts";
import type { Order } from "./schema.ts";

/** Which write: its key, and what it asked for (the same key with another request is a conflict). */
export interface WriteIdentity {
  /** The caller's Idempotency-Key, or one the server made for this request. */
  key: string;
  /** A hash of the request as sent (not of the server's defaults). */
  fingerprint: string;
  /** This attempt (a uuid): a tombstone names the attempts that must never commit. */
  attempt: string;
}

export interface AddOrderCall extends WriteIdentity {
  /** Lock waits end here; an attempt that begins after it stores nothing. */
  deadline: Date;
  customerId: number;
  orderDate: string;
  netAmount: string;
  tax: string;
  totalAmount: string;
}

export type AddOrderResult =
  /** Stored now, or by an earlier attempt with the same key and request. */
  | { outcome: "created" | "replayed"; order: Order }
  /** The key was used for another request. */
  | { outcome: "conflict" }
  /** The key's order has since been deleted. */
  | { outcome: "gone"; orderId: number }
  /** This attempt was settled as not stored (a tombstone names it): it stored nothing, and never will. */
  | { outcome: "abandoned" };

interface Row extends Record<string, unknown> {
  outcome: AddOrderResult["outcome"];
  orderid: number;
  orderdate: string;
  customerid: number | null;
  netamount: string;
  tax: string;
  totalamount: string;
}

export async function addOrder(db: Database, call: AddOrderCall): Promise<AddOrderResult> {
  return resultOf(
    await db.execute<Row>(
      sql`SELECT * FROM add_order(${call.key}, ${call.fingerprint}, ${call.attempt}::uuid,
        ${call.deadline.toISOString()}::timestamptz, ${call.customerId}, ${call.orderDate}::date,
        ${call.netAmount}::numeric, ${call.tax}::numeric, ${call.totalAmount}::numeric)`,
    ),
  );
}

/**
 * What became of `write`, waiting at most `waitMs` for its transaction to let
 * go of the key: "abandoned" (proven not stored, now or ever), or the order
 * the key holds. Rejects (lock_not_available, a lost connection) when that
 * can't be known in time.
 */
export async function settleWrite(db: Database, write: WriteIdentity, waitMs: number): Promise<AddOrderResult> {
  return resultOf(
    await db.execute<Row>(
      sql`SELECT * FROM settle_write(${write.key}, ${write.fingerprint}, ${write.attempt}::uuid, ${Math.ceil(waitMs)})`,
    ),
  );
}

function resultOf(result: unknown): AddOrderResult {
  const [row] = rowsOf<Row>(result);
  if (!row) throw new Error("the write function returned no row");
  switch (row.outcome) {
    case "conflict":
    case "abandoned":
      return { outcome: row.outcome };
    case "gone":
      return { outcome: "gone", orderId: row.orderid };
    default:
      return {
        outcome: row.outcome,
        order: {
          orderId: row.orderid,
          orderDate: row.orderdate,
          customerId: row.customerid,
          netAmount: row.netamount,
          tax: row.tax,
          totalAmount: row.totalamount,
        },
      };
  }
}
