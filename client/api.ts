// The API as other apps see it: every procedure's input and output, and the
// error shape, in plain types. The server's own router type would carry its
// context (the Drizzle database, the logger, the cache) into every consumer's
// type-check; test/client-types.test.ts proves the two agree, procedure by procedure.
import type {
  TRPC_ERROR_CODE_KEY,
  TRPC_ERROR_CODE_NUMBER,
  TRPCBuiltRouter,
  TRPCMutationProcedure,
  TRPCQueryProcedure,
  TRPCSubscriptionProcedure,
} from "@trpc/server";

/** Money travels as a decimal string with two decimals ("25.00"); dates as YYYY-MM-DD. */
export interface Order {
  orderId: number;
  orderDate: string;
  /** null once the customer has been deleted. */
  customerId: number | null;
  netAmount: string;
  tax: string;
  totalAmount: string;
}

export interface AddOrderInput {
  customerId: number;
  /** A non-negative amount with at most two decimals: 23, 23.5, "23.50". */
  netAmount: number | string;
  tax: number | string;
  /** YYYY-MM-DD; defaults to today, by the server's clock and time zone. */
  orderDate?: string | undefined;
  /** 1–128 printable characters; the same key with the same order returns the first result (the client sends one per call). */
  idempotencyKey?: string | undefined;
}

export interface MonthlyOrders {
  /** YYYY-MM */
  month: string;
  orders: number;
  revenue: string;
}

export interface CustomerSummary {
  customerId: number;
  orders: number;
  totalSpent: string;
  /** null when the customer has no orders. */
  lastOrderDate: string | null;
}

/** What a failed call carries in `error.data`. */
export interface ErrorData {
  code: TRPC_ERROR_CODE_KEY;
  httpStatus: number;
  path?: string;
  /** With BAD_REQUEST: each failing input field and what is wrong with it. */
  fields?: Record<string, string[] | undefined>;
}

export interface ErrorShape {
  code: TRPC_ERROR_CODE_NUMBER;
  message: string;
  data: ErrorData;
}

type Query<Input, Output> = TRPCQueryProcedure<{ input: Input; output: Output; meta: object }>;
type Mutation<Input, Output> = TRPCMutationProcedure<{ input: Input; output: Output; meta: object }>;
/** Events with ids (tRPC's tracked()): a reconnecting client resumes from the last one. */
type Subscription<Input, Event> = TRPCSubscriptionProcedure<{
  input: Input;
  // biome-ignore lint/suspicious/noExplicitAny: the type tRPC itself infers for what a subscription's generator is sent
  output: AsyncIterable<{ id: string; data: Event }, never, any>;
  meta: object;
}>;

/** orders.watchCount's input; tRPC fills in lastEventId when the client reconnects. */
export interface WatchCountInput {
  customerId?: number | undefined;
  lastEventId?: string | null | undefined;
}

export type AppRouter = TRPCBuiltRouter<
  { ctx: object; meta: object; errorShape: ErrorShape; transformer: true },
  {
    orders: {
      count: Query<{ customerId?: number | undefined } | undefined, { count: number }>;
      monthly: Query<{ year: number }, MonthlyOrders[]>;
      add: Mutation<AddOrderInput, Order>;
      watchCount: Subscription<WatchCountInput | undefined, { count: number }>;
    };
    customers: {
      summary: Query<{ customerId: number }, CustomerSummary>;
    };
  }
>;
