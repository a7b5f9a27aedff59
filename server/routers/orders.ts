import { createHash, randomUUID } from "node:crypto";
import { TRPCError } from "@trpc/server";
import { type AddOrderResult, addOrder, settleWrite } from "../../db/add-order.ts";
import type { Order } from "../../db/schema.ts";
import { isForeignKeyViolation } from "../database-errors.ts";
import { addOrderInput } from "../inputs.ts";
import { formatCents } from "../money.ts";
import { countOutput, monthlyOutput, orderOutput } from "../outputs.ts";
import { parseOnce } from "../parse-once.ts";
import { writeProcedure } from "../trpc.ts";
import { notStored, runWrite } from "../writes.ts";
import { ordersCount, ordersMonthly } from "./cache-policies.ts";
import { cachedQuery, invalidates } from "./cached-query.ts";
import { documented } from "./documented.ts";
import { tagsOfOrder } from "./tags.ts";
import { watchCount } from "./watch-count.ts";

// Years before 1000 need their leading zeros, or PostgreSQL reads "12-01-01" as 2012.
const yyyy = (year: number) => String(year).padStart(4, "0");

/** What makes two requests "the same order" for an idempotency key. */
const fingerprint = (order: Record<string, string | number | null>) =>
  createHash("sha256").update(JSON.stringify(order)).digest("base64url");

const isOrder = (output: unknown): output is Order =>
  typeof output === "object" && output !== null && "orderId" in output;

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

  /** `count`, live: the current count at once, then each new one (server/live/count-hub.ts). */
  watchCount,

  /**
   * Stores the order with its idempotency key (the caller's, or a fresh one),
   * answering only what is true: see server/writes.ts and db/add-order.ts.
   */
  add: writeProcedure
    .input(addOrderInputParser.parser)
    .use(invalidates({ tags: (input, output) => tagsOfOrder(isOrder(output) ? output : input) }))
    .mutation(async ({ ctx: { db, settler, metrics, answerBy }, input }) => {
      const order = {
        customerId: input.customerId,
        orderDate: input.orderDate,
        netAmount: formatCents(input.netAmount),
        tax: formatCents(input.tax),
        totalAmount: formatCents(input.netAmount + input.tax),
      };
      // The request as sent: a date the server filled in is not part of it.
      const sent = { ...order, orderDate: input.dateGiven ? input.orderDate : null };
      const write = { key: input.idempotencyKey ?? randomUUID(), fingerprint: fingerprint(sent) };
      let result: AddOrderResult;
      try {
        result = await runWrite<AddOrderResult>({
          answerBy,
          metrics,
          attempt: (attempt, deadline) => addOrder(db, { ...order, ...write, attempt, deadline }),
          settle: async (attempt, waitMs) => {
            const settled = await settleWrite(settler, { ...write, attempt }, waitMs);
            return settled.outcome === "abandoned" ? "absent" : settled;
          },
        });
      } catch (error) {
        if (isForeignKeyViolation(error)) {
          throw new TRPCError({ code: "NOT_FOUND", message: `Customer ${input.customerId} does not exist.` });
        }
        throw error;
      }
      switch (result.outcome) {
        case "created":
        case "replayed":
          return result.order;
        case "conflict":
          throw new TRPCError({
            code: "CONFLICT",
            message: "This Idempotency-Key was already used for a different order; use a new key for a new order.",
          });
        case "gone":
          throw new TRPCError({
            code: "CONFLICT",
            message: `This Idempotency-Key created order ${result.orderId}, which has since been deleted.`,
          });
        case "abandoned":
          // Only an attempt already answered (504, then settled) can find itself abandoned.
          throw notStored();
      }
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
      SERVICE_UNAVAILABLE:
        "this attempt stored nothing, and never will: retry with the same idempotencyKey, which stores the order at most once",
      GATEWAY_TIMEOUT:
        "the outcome is unknown: retry with the same idempotencyKey, which stores the order at most once",
    },
    example: { customerId: 9999, netAmount: "23.00", tax: "2.00", orderDate: "2023-03-10" },
  },
  ordersProcedures.add,
);
