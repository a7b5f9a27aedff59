// What a valid call looks like, with messages a caller can act on: the
// procedures' inputs, and the pieces the REST routes build theirs from.
import { z } from "zod";
import { formatCents, maxCents, parseCents } from "./money.ts";

export const customerId = z
  .number({ error: "must be a number" })
  .int("must be a whole number")
  .positive("must be positive")
  .max(2 ** 31 - 1, "must fit in 32 bits");

export const isoDate = z
  .string({ error: "must be a date as YYYY-MM-DD" })
  .regex(/^\d{4}-\d{2}-\d{2}$/, "must be a date as YYYY-MM-DD")
  .refine(isCalendarDate, "is not a calendar date");

function isCalendarDate(value: string): boolean {
  const [year, month, day] = value.split("-").map(Number) as [number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  return year >= 1 && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** A non-negative amount with at most two decimals, as a number or a string; parsed to cents. */
const moneyMessage = "must be a non-negative amount with at most two decimals";

// The pattern is for the API docs (JSON Schema); parseCents is the judge.
export const money = z
  .union([z.number(), z.string().regex(/^\d+(\.\d{1,2})?$/, moneyMessage)], { error: moneyMessage })
  .transform((value, ctx) => {
    const cents = parseCents(value);
    if (cents === undefined) {
      ctx.addIssue({ code: "custom", message: moneyMessage });
      return z.NEVER;
    }
    if (cents > maxCents) {
      ctx.addIssue({ code: "custom", message: `must not exceed ${formatCents(maxCents)}` });
      return z.NEVER;
    }
    return cents;
  });

/** An order's total must fit numeric(12,2) too. */
export const totalFits = (net: bigint, tax: bigint) => net + tax <= maxCents;

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
    .number({ error: "must be a number" })
    .int("must be a whole number")
    .min(1, "must be 1 or later")
    .max(9999, "must be 9999 or earlier"),
});

/** An Idempotency-Key: what a client resends with a retry so the write happens once. */
export const idempotencyKey = z
  .string({ error: "must be a string" })
  .regex(/^[\x20-\x7E]{1,128}$/, "must be 1 to 128 printable ASCII characters");

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
    message: `netAmount + tax must not exceed ${formatCents(maxCents)}`,
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
