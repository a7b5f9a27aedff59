// The input rules, stated once. The CLI checks its flags with them before it
// sends anything; the server's zod schemas (server/inputs.ts) and REST routes
// judge with these same functions, so the two can't disagree. Each rule returns
// what is wrong with a value, or undefined when it is fine. No dependencies:
// this ships in @dellstore/client, where zod would weigh more than the client.
import { formatCents, maxCents, parseCents } from "./money.ts";

/** What a field that was left out gets, whatever its rule: the rules below judge values that are there. */
export const requiredMessage = "is required";

/** customerid is a PostgreSQL integer. */
export const maxCustomerId = 2 ** 31 - 1;

export function customerIdProblem(id: number): string | undefined {
  if (!Number.isInteger(id)) return "must be a whole number";
  if (id <= 0) return "must be positive";
  if (id > maxCustomerId) return "must fit in 32 bits";
  return undefined;
}

/** Digits only, as a customer id is typed. */
export const customerIdTextPattern = /^\d+$/;

/** A customer id as typed (a CLI flag, a query parameter): "-1" must be positive, "1.5" must be whole. */
export function customerIdTextProblem(text: string): string | undefined {
  if (customerIdTextPattern.test(text)) return customerIdProblem(Number(text));
  if (/^-\d+$/.test(text)) return "must be positive";
  return /^-?(\d+\.\d*|\.\d+)$/.test(text) ? "must be a whole number" : "must be a positive whole number";
}

export const isoDatePattern = /^\d{4}-\d{2}-\d{2}$/;

/** YYYY-MM-DD, and a day the calendar has (2023-02-30 is not). */
export function isoDateProblem(text: string): string | undefined {
  if (!isoDatePattern.test(text)) return "must be a date as YYYY-MM-DD";
  const [year, month, day] = text.split("-").map(Number) as [number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  const exists = year >= 1 && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
  return exists ? undefined : "is not a calendar date";
}

/** The shape of a money string, for documents (JSON Schema); moneyProblem is the judge. */
export const moneyPattern = /^\d+(\.\d{1,2})?$/;
export const moneyMessage = "must be a non-negative amount with at most two decimals";

/** A non-negative amount with at most two decimals that fits numeric(12,2), as a number or a string. */
export function moneyProblem(value: number | string): string | undefined {
  const cents = parseCents(value);
  if (cents === undefined) return moneyMessage;
  if (cents > maxCents) return `must not exceed ${formatCents(maxCents)}`;
  return undefined;
}

/** An order's total must fit numeric(12,2) too. */
export const totalFits = (net: bigint, tax: bigint) => net + tax <= maxCents;
export const totalMessage = (net: string, tax: string) => `${net} + ${tax} must not exceed ${formatCents(maxCents)}`;

export const idempotencyKeyPattern = /^[\x20-\x7E]{1,128}$/;

/** What a client resends with a retry so the write happens once. */
export function idempotencyKeyProblem(key: string): string | undefined {
  return idempotencyKeyPattern.test(key) ? undefined : "must be 1 to 128 printable ASCII characters";
}

/** tRPC batches larger than this are refused (one request must not fan out into unbounded work); the client splits its batches to fit. */
export const maxBatchSize = 20;
