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
export const money = z
  .union([z.number(), z.string().regex(/^\d+(\.\d{1,2})?$/)], {
    error: "must be a non-negative amount with at most two decimals",
  })
  .transform((value, ctx) => {
    const cents = parseCents(value);
    if (cents === undefined) {
      ctx.addIssue({ code: "custom", message: "must be a non-negative amount with at most two decimals" });
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

/** Today's date, by the server's clock and time zone. */
export function today(): string {
  const now = new Date();
  return [now.getFullYear(), now.getMonth() + 1, now.getDate()].map((n) => String(n).padStart(2, "0")).join("-");
}

export const countOrdersInput = z.object({ customerId: customerId.optional() }).optional();

export const customerInput = z.object({ customerId });

export const yearInput = z.object({
  year: z
    .number({ error: "must be a number" })
    .int("must be a whole number")
    .min(1, "must be 1 or later")
    .max(9999, "must be 9999 or earlier"),
});

export const addOrderInput = z
  .object({
    customerId,
    netAmount: money,
    tax: money,
    /** Defaults to today, by the server's clock and time zone. */
    orderDate: isoDate.default(today),
  })
  .refine((order) => totalFits(order.netAmount, order.tax), {
    path: ["tax"],
    message: `netAmount + tax must not exceed ${formatCents(maxCents)}`,
  });

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
