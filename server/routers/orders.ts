import { createHash, randomUUID } from "node:crypto";
import { TRPCError } from "@trpc/server";
import { type AddOrderResult, addOrder } from "../../db/add-order.ts";
import { cachedQuery, invalidates } from "../cache/middleware.ts";
import { isForeignKeyViolation } from "../database-errors.ts";
import { addOrderInput } from "../inputs.ts";
import { formatCents } from "../money.ts";
import { countOutput, monthlyOutput, orderOutput } from "../outputs.ts";
import { parseOnce } from "../parse-once.ts";
import { writeProcedure } from "../trpc.ts";
import { ordersCount, ordersMonthly } from "./cache-policies.ts";
import { documented } from "./documented.ts";
import { tagsOfOrder } from "./tags.ts";

// Years before 1000 need their leading zeros, or PostgreSQL reads "12-01-01" as 2012.
const yyyy = (year: number) => String(year).padStart(4, "0");

/** What makes two requests "the same order" for an idempotency key. */
const fingerprint = (order: Record<string, string | number>) =>
  createHash("sha256").update(JSON.stringify(order)).digest("base64url");

/** orders.add's input; the REST route hands over the order it validated itself (money already in cents). */
export const addOrderInputParser = parseOnce(addOrderInput);

export const ordersProcedures = {
  count: cachedQuery(
    ordersCount,
    { summary: "Count orders, in all or of one customer (cached)", output: countOutput, example: { customerId: 9999 } },
    async ({ ctx: { queries }, input }) => {
      const [row] =
        input?.customerId === undefined
          ? await queries.countOrders.execute()
          : await queries.countCustomerOrders.execute({ customerId: input.customerId });
      return { count: row?.count ?? 0 };
    },
  ),

  /** Orders and revenue per month of one year, from the monthly aggregates. */
  monthly: cachedQuery(
    ordersMonthly,
    { summary: "Orders and revenue per month of one year (cached)", output: monthlyOutput, example: { year: 2004 } },
    ({ ctx: { queries }, input: { year } }) =>
      queries.monthly.execute({ from: `${yyyy(year)}-01-01`, to: `${yyyy(year + 1)}-01-01` }),
  ),

  /**
   * Stores the order with its idempotency key (the caller's, or a fresh one) in
   * one transaction bound to the request's deadline: see db/add-order.ts.
   */
  add: writeProcedure
    .input(addOrderInputParser.parser)
    .use(invalidates({ tags: (input) => tagsOfOrder(input) }))
    .mutation(async ({ ctx: { db, deadline }, input }) => {
      const order = {
        customerId: input.customerId,
        orderDate: input.orderDate,
        netAmount: formatCents(input.netAmount),
        tax: formatCents(input.tax),
        totalAmount: formatCents(input.netAmount + input.tax),
      };
      let result: AddOrderResult;
      try {
        result = await addOrder(db, {
          ...order,
          key: input.idempotencyKey ?? randomUUID(),
          fingerprint: fingerprint(order),
          deadline,
        });
      } catch (error) {
        if (isForeignKeyViolation(error)) {
          throw new TRPCError({ code: "NOT_FOUND", message: `Customer ${input.customerId} does not exist.` });
        }
        throw error;
      }
      if (result.outcome === "conflict") {
        throw new TRPCError({
          code: "CONFLICT",
          message: "This Idempotency-Key was already used for a different order; use a new key for a new order.",
        });
      }
      if (result.outcome === "gone") {
        throw new TRPCError({
          code: "CONFLICT",
          message: `This Idempotency-Key created order ${result.orderId}, which has since been deleted.`,
        });
      }
      return result.order;
    }),
};

// orders.add as the API document states it (the compiler checks it against the procedure).
documented(
  {
    kind: "mutation",
    summary: "Add an order; invalidates the cached results it changes",
    input: addOrderInput,
    output: orderOutput,
    errors: {
      UNAUTHORIZED: "the server has an API_TOKEN and the bearer token was missing or wrong",
      NOT_FOUND: "no such customer",
      CONFLICT: "this idempotencyKey was already used for another order",
    },
    example: { customerId: 9999, netAmount: "23.00", tax: "2.00", orderDate: "2023-03-10" },
  },
  ordersProcedures.add,
);
