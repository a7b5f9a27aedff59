// dellstore2's own table and column names, so the real dump loads as is and
// psql users see the tables they know; TypeScript names are camelCase.
import {
  bigint,
  date,
  foreignKey,
  index,
  integer,
  numeric,
  pgTable,
  primaryKey,
  serial,
  smallint,
  text,
  timestamp,
  uniqueIndex,
  uuid,
  varchar,
} from "drizzle-orm/pg-core";

const text50 = (name: string) => varchar(name, { length: 50 });
const money = (name: string) => numeric(name, { precision: 12, scale: 2 });

export const customers = pgTable(
  "customers",
  {
    customerId: serial("customerid").primaryKey(),
    firstName: text50("firstname").notNull(),
    lastName: text50("lastname").notNull(),
    address1: text50("address1").notNull(),
    address2: text50("address2"),
    city: text50("city").notNull(),
    state: text50("state"),
    zip: integer("zip"),
    country: text50("country").notNull(),
    region: smallint("region").notNull(),
    email: text50("email"),
    phone: text50("phone"),
    creditCardType: integer("creditcardtype").notNull(),
    creditCard: text50("creditcard").notNull(),
    creditCardExpiration: text50("creditcardexpiration").notNull(),
    username: text50("username").notNull(),
    password: text50("password").notNull(),
    age: smallint("age"),
    income: integer("income"),
    gender: varchar("gender", { length: 1 }),
  },
  (t) => [uniqueIndex("ix_cust_username").on(t.username)],
);

export const orders = pgTable(
  "orders",
  {
    orderId: serial("orderid").primaryKey(),
    // Dates stay "YYYY-MM-DD" strings: no time zone can shift them.
    orderDate: date("orderdate", { mode: "string" }).notNull(),
    customerId: integer("customerid"),
    // Money stays an exact decimal string end to end.
    netAmount: money("netamount").notNull(),
    tax: money("tax").notNull(),
    totalAmount: money("totalamount").notNull(),
  },
  (t) => [
    index("ix_order_custid").on(t.customerId),
    foreignKey({ name: "fk_customerid", columns: [t.customerId], foreignColumns: [customers.customerId] }).onDelete(
      "set null",
    ),
  ],
);

// Aggregates of orders that PostgreSQL keeps exact in every writing transaction
// (triggers in migration 0002), so counts and sums cost the size of their
// answer, not of the table. Never written by the app.
const sumOfMoney = (name: string) => numeric(name, { precision: 20, scale: 2 });

/**
 * Orders and revenue per month, split over slots: concurrent writers add their
 * deltas to different rows (slot = backend pid % 64), so no row is hot. A
 * month's figure is the sum over its slots; the total count, the sum of all.
 */
export const orderMonthlyStats = pgTable(
  "order_monthly_stats",
  {
    /** The month's first day. */
    month: date("month", { mode: "string" }).notNull(),
    slot: smallint("slot").notNull(),
    orders: bigint("orders", { mode: "number" }).notNull(),
    revenue: sumOfMoney("revenue").notNull(),
  },
  (t) => [primaryKey({ name: "order_monthly_stats_pkey", columns: [t.month, t.slot] })],
);

/** Per customer with orders: how many, total spent, the last order's date. */
export const customerOrderStats = pgTable("customer_order_stats", {
  customerId: integer("customerid").primaryKey(),
  orders: bigint("orders", { mode: "number" }).notNull(),
  totalSpent: sumOfMoney("total_spent").notNull(),
  lastOrderDate: date("last_order_date", { mode: "string" }),
});

/**
 * One row per write made through the app, stored in the write's own
 * transaction: the caller's Idempotency-Key (or one the server made up), what
 * the request asked for, and the order it created. A row without an order is a
 * tombstone: an attempt whose outcome the app could not learn in time was
 * proven dead by storing it (db/add-order.ts), so that attempt can never
 * commit, while a retry with the same key may. Swept after 24 hours.
 */
export const idempotencyKeys = pgTable(
  "idempotency_keys",
  {
    key: varchar("key", { length: 128 }).primaryKey(),
    /** sha256 of the request's normalized input: the same key with another body is a conflict. */
    fingerprint: text("fingerprint").notNull(),
    // No foreign key: deleting an order must not be blocked by its key.
    orderId: integer("order_id"),
    /** On a tombstone: the attempts that must never commit. */
    abandonedAttempts: uuid("abandoned_attempts").array(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index("ix_idempotency_created").on(t.createdAt)],
);

export type Customer = typeof customers.$inferSelect;
export type NewCustomer = typeof customers.$inferInsert;
export type Order = typeof orders.$inferSelect;
export type NewOrder = typeof orders.$inferInsert;
