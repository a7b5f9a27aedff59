// The service's queries, built once per database and prepared: each call only
// binds its parameters (no SQL building per request, one server-side plan).
import { and, eq, gte, lt, sql, sum } from "drizzle-orm";
import type { Database } from "./client.ts";
import { customerOrderStats, customers, orderMonthlyStats } from "./schema.ts";

// Reads go to the aggregates the triggers of migration 0002 keep exact, so each
// costs the size of its answer (a month's slots, one customer's row), not a
// scan of orders.
const month = sql<string>`to_char(${orderMonthlyStats.month}, 'YYYY-MM')`;
const ordersOfMonth = sql<number>`sum(${orderMonthlyStats.orders})`.mapWith(Number);

export function prepareQueries(db: Database) {
  return {
    countOrders: db
      .select({ count: sql<number>`coalesce(${ordersOfMonth}, 0)`.mapWith(Number) })
      .from(orderMonthlyStats)
      .prepare("count_orders"),

    countCustomerOrders: db
      .select({ count: customerOrderStats.orders })
      .from(customerOrderStats)
      .where(eq(customerOrderStats.customerId, sql.placeholder("customerId")))
      .prepare("count_customer_orders"),

    /** Several customers' counts at once (live counts recompute every changed one in one round trip); absent: 0. */
    countCustomersOrders: db
      .select({ customerId: customerOrderStats.customerId, count: customerOrderStats.orders })
      .from(customerOrderStats)
      .where(sql`${customerOrderStats.customerId} = ANY(${sql.placeholder("customerIds")}::int[])`)
      .prepare("count_customers_orders"),

    /** Orders and revenue per month between two dates ("from" inclusive, "to" exclusive). */
    monthly: db
      .select({ month, orders: ordersOfMonth, revenue: sql<string>`${sum(orderMonthlyStats.revenue)}` })
      .from(orderMonthlyStats)
      .where(
        and(gte(orderMonthlyStats.month, sql.placeholder("from")), lt(orderMonthlyStats.month, sql.placeholder("to"))),
      )
      .groupBy(orderMonthlyStats.month)
      .having(sql`${ordersOfMonth} <> 0`)
      .orderBy(orderMonthlyStats.month)
      .prepare("monthly_orders"),

    customerSummary: db
      .select({
        customerId: customers.customerId,
        orders: sql<number>`coalesce(${customerOrderStats.orders}, 0)`.mapWith(Number),
        totalSpent: sql<string>`coalesce(${customerOrderStats.totalSpent}, 0.00)`,
        lastOrderDate: customerOrderStats.lastOrderDate,
      })
      .from(customers)
      .leftJoin(customerOrderStats, eq(customerOrderStats.customerId, customers.customerId))
      .where(eq(customers.customerId, sql.placeholder("customerId")))
      .prepare("customer_summary"),
  };
}

export type Queries = ReturnType<typeof prepareQueries>;
