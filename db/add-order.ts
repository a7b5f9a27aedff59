// orders.add's one round trip: the add_order() function (migration 0003)
// stores the order and its idempotency key in one transaction that refuses to
// commit past the write's deadline.
import { sql } from "drizzle-orm";
import { type Database, rowsOf } from "./client.ts";
import type { Order } from "./schema.ts";

export interface AddOrderCall {
  /** The caller's Idempotency-Key, or one made up for this call. */
  key: string;
  /** What the request asked for, normalized and hashed: the same key with another request is a conflict. */
  fingerprint: string;
  /** Past this instant (by the database's clock) the write aborts instead of committing. */
  deadline: Date;
  customerId: number;
  orderDate: string;
  netAmount: string;
  tax: string;
  totalAmount: string;
}

export type AddOrderResult =
  /** Stored now, or by an earlier call with the same key and request. */
  | { outcome: "created" | "replayed"; order: Order }
  /** The key was used for another request. */
  | { outcome: "conflict" }
  /** The key's order has since been deleted. */
  | { outcome: "gone"; orderId: number };

interface Row extends Record<string, unknown> {
  outcome: "created" | "replayed" | "conflict" | "gone";
  orderid: number;
  orderdate: string;
  customerid: number | null;
  netamount: string;
  tax: string;
  totalamount: string;
}

export async function addOrder(db: Database, call: AddOrderCall): Promise<AddOrderResult> {
  const result = await db.execute<Row>(
    sql`SELECT * FROM add_order(${call.key}, ${call.fingerprint}, ${call.deadline.toISOString()}::timestamptz,
      ${call.customerId}, ${call.orderDate}::date, ${call.netAmount}::numeric, ${call.tax}::numeric, ${call.totalAmount}::numeric)`,
  );
  const [row] = rowsOf<Row>(result);
  if (!row) throw new Error("add_order() returned no row");
  if (row.outcome === "conflict") return { outcome: "conflict" };
  if (row.outcome === "gone") return { outcome: "gone", orderId: row.orderid };
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
