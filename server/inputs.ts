// What a valid call looks like, with messages a caller can act on: the
// procedures' inputs, and the pieces the REST routes build theirs from.
import { z } from "zod";
import { parseCents } from "../client/money.ts";
import {
  customerIdProblem,
  customerIdTextPattern,
  customerIdTextProblem,
  idempotencyKeyPattern,
  idempotencyKeyProblem,
  isoDatePattern,
  isoDateProblem,
  maxCustomerId,
  moneyMessage,
  moneyPattern,
  moneyProblem,
  requiredMessage,
  totalFits,
  totalMessage,
} from "../client/rules.ts";

export { totalFits };

/** A schema whose values are judged by one of the shared rules (client/rules.ts), with the rule's message. */
function judgedBy<T extends z.ZodType>(schema: T, problem: (value: z.output<T>) => string | undefined) {
  return schema.superRefine((value, ctx) => {
    const message = problem(value);
    if (message !== undefined) ctx.addIssue({ code: "custom", message });
  });
}

/**
 * zod's message for a value of the wrong type: "is required" when the field
 * was left out (a missing field is not a wrong amount), else `message` (zod's
 * own when there is none).
 */
const unlessMissing =
  (message?: string) =>
  ({ input }: { input?: unknown }) =>
    input === undefined ? requiredMessage : message;

// The .meta() states the rule's shape for the API documents (JSON Schema); the rule is the judge.
export const customerId = judgedBy(z.number({ error: unlessMissing("must be a number") }), customerIdProblem).meta({
  type: "integer",
  minimum: 1,
  maximum: maxCustomerId,
});

/** A customer id as text, as FastAPI reads an int from a query string. */
export const customerIdText = judgedBy(z.string({ error: unlessMissing() }), customerIdTextProblem)
  .transform(Number)
  .meta({ pattern: customerIdTextPattern.source });

/** A customer id in JSON, where FastAPI also takes it as text. */
export const customerIdNumberOrText = judgedBy(
  z.union([z.number(), z.string()], { error: unlessMissing("must be a positive whole number") }),
  (id) => (typeof id === "number" ? customerIdProblem(id) : customerIdTextProblem(id)),
).transform(Number);

export const isoDate = judgedBy(
  z.string({ error: unlessMissing("must be a date as YYYY-MM-DD") }),
  isoDateProblem,
).meta({
  pattern: isoDatePattern.source,
});

/** A non-negative amount with at most two decimals, as a number or a string; parsed to cents. */
export const money = judgedBy(
  z.union([z.number(), z.string().meta({ pattern: moneyPattern.source })], { error: unlessMissing(moneyMessage) }),
  moneyProblem,
).transform((value) => parseCents(value) as bigint);

/** Today's date as YYYY-MM-DD, by this process's clock and time zone: an order's default date. */
export function today(): string {
  const now = new Date();
  return [now.getFullYear(), now.getMonth() + 1, now.getDate()].map((n) => String(n).padStart(2, "0")).join("-");
}

export const countOrdersInput = z.object({ customerId: customerId.optional() }).optional();
/** orders.watchCount's: the count's, plus the id of the last event a reconnecting client got (tRPC adds it). */
export const watchCountInput = z
  .object({ customerId: customerId.optional(), lastEventId: z.string().max(64).nullish() })
  .optional();

export const customerInput = z.object({ customerId });

export const yearInput = z.object({
  year: z
    .number({ error: unlessMissing("must be a number") })
    .int("must be a whole number")
    .min(1, "must be 1 or later")
    .max(9999, "must be 9999 or earlier"),
});

/** An Idempotency-Key: what a client resends with a retry so the write happens once. */
export const idempotencyKey = judgedBy(
  z.string({ error: unlessMissing("must be a string") }),
  idempotencyKeyProblem,
).meta({
  pattern: idempotencyKeyPattern.source,
});

export const addOrderInput = z
  .object({
    customerId,
    netAmount: money,
    tax: money,
    /** Defaults to today, by the server's clock and time zone. */
    orderDate: isoDate.optional(),
    /** The same key with the same order returns the first result and stores nothing more. */
    idempotencyKey: idempotencyKey.optional(),
  })
  .refine((order) => totalFits(order.netAmount, order.tax), {
    path: ["tax"],
    message: totalMessage("netAmount", "tax"),
    // Only a sum of two valid amounts can be too large; a bad field already has its message.
    when: (payload) => payload.issues.length === 0,
  })
  // The date is filled in, and whether the caller gave it kept: an idempotency key's request is the one
  // as sent, so a retry after midnight is the same request.
  .transform(({ orderDate, ...order }) => ({
    ...order,
    orderDate: orderDate ?? today(),
    dateGiven: orderDate !== undefined,
  }));

export type CountOrdersInput = z.input<typeof countOrdersInput>;
export type AddOrderInput = z.input<typeof addOrderInput>;

/** "customerId: must be positive; tax: …" */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const field = issue.path.map(String).join(".");
      return field ? `${field}: ${issue.message}` : issue.message;
    })
    .join("; ");
}
