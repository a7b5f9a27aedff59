// orders.add's database side (migrations 0005, 0007): add_order() stores the order
// and its idempotency key in one transaction; settle_write() learns, on
// another connection, what became of an attempt whose answer didn't come,
// committing a tombstone when it had stored nothing, so that it never will.
import { sql } from "drizzle-orm";
import type { Database } from "./client.ts";
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
  /** Lock waits end here (on this process's clock); an attempt that begins after it stores nothing. */
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

/** What add_order() and settle_write() answer, one row. */
const answer = {
  outcome: sql<AddOrderResult["outcome"]>`outcome`,
  orderid: sql<number>`orderid`,
  orderdate: sql<string>`orderdate`,
  customerid: sql<number | null>`customerid`,
  netamount: sql<string>`netamount`,
  tax: sql<string>`tax`,
  totalamount: sql<string>`totalamount`,
};
type Row = { [K in keyof typeof answer]: (typeof answer)[K]["_"]["type"] };

const p = sql.placeholder;

// Prepared once per database handle: each write then costs one round trip that
// only binds its values (an unprepared statement with parameters costs two:
// describe, then execute) and PostgreSQL's plan is reused.
function prepare(db: Database) {
  return {
    add: db
      .select(answer)
      .from(
        sql`add_order(${p("key")}, ${p("fingerprint")}, ${p("attempt")}::uuid, ${p("waitMs")}::integer,
          ${p("customerId")}::integer, ${p("orderDate")}::date, ${p("netAmount")}::numeric, ${p("tax")}::numeric,
          ${p("totalAmount")}::numeric)`,
      )
      .prepare("add_order"),
    settle: db
      .select(answer)
      .from(sql`settle_write(${p("key")}, ${p("fingerprint")}, ${p("attempt")}::uuid, ${p("waitMs")}::integer)`)
      .prepare("settle_write"),
  };
}
const prepared = new WeakMap<Database, ReturnType<typeof prepare>>();
function statementsOf(db: Database) {
  const known = prepared.get(db);
  if (known) return known;
  const statements = prepare(db);
  prepared.set(db, statements);
  return statements;
}

export async function addOrder(db: Database, call: AddOrderCall): Promise<AddOrderResult> {
  // The time left, not the deadline: PostgreSQL's clock need not agree with ours (migration 0007).
  const waitMs = Math.max(0, Math.floor(call.deadline.getTime() - Date.now()));
  return resultOf(await statementsOf(db).add.execute({ ...call, waitMs }));
}

/**
 * What became of `write`, waiting at most `waitMs` for its transaction to let
 * go of the key: "abandoned" (proven not stored, now or ever), or the order
 * the key holds. Rejects (lock_not_available, a lost connection) when that
 * can't be known in time.
 */
export async function settleWrite(db: Database, write: WriteIdentity, waitMs: number): Promise<AddOrderResult> {
  return resultOf(await statementsOf(db).settle.execute({ ...write, waitMs: Math.ceil(waitMs) }));
}

function resultOf([row]: Row[]): AddOrderResult {
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
