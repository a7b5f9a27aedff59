// The service's queries, built once per database and prepared: each call only
// binds its parameters (no SQL building per request, one server-side plan).
import { and, count, eq, gte, lt, max, sql, sum } from "drizzle-orm";
import type { Database } from "./client.ts";
import { customers, orders } from "./schema.ts";

const month = sql<string>`to_char(${orders.orderDate}, 'YYYY-MM')`;

export function prepareQueries(db: Database) {
  return {
    countOrders: db.select({ count: count() }).from(orders).prepare("count_orders"),

    countCustomerOrders: db
      .select({ count: count() })
      .from(orders)
      .where(eq(orders.customerId, sql.placeholder("customerId")))
      .prepare("count_customer_orders"),

    /** Orders and revenue per month between two dates ("from" inclusive, "to" exclusive). */
    monthly: db
      .select({ month, orders: count(), revenue: sql<string>`${sum(orders.totalAmount)}` })
      .from(orders)
      .where(and(gte(orders.orderDate, sql.placeholder("from")), lt(orders.orderDate, sql.placeholder("to"))))
      .groupBy(month)
      .orderBy(month)
      .prepare("monthly_orders"),

    customerSummary: db
      .select({
        customerId: customers.customerId,
        orders: count(orders.orderId),
        totalSpent: sql<string>`coalesce(${sum(orders.totalAmount)}, 0.00)`,
        lastOrderDate: max(orders.orderDate),
      })
      .from(customers)
      .leftJoin(orders, eq(orders.customerId, customers.customerId))
      .where(eq(customers.customerId, sql.placeholder("customerId")))
      .groupBy(customers.customerId)
      .prepare("customer_summary"),
  };
}

export type Queries = ReturnType<typeof prepareQueries>;
