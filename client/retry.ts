// Makes "try again" safe: every orders.add gets an Idempotency-Key (unless the
// caller gave one) before the retry link, so each retry of it resends the same
// key and the server stores the order at most once.
import { retryLink, type TRPCClientError, type TRPCLink } from "@trpc/client";
import { observable } from "@trpc/server/observable";
import type { AppRouter } from "./api.ts";

/** Procedures whose input takes an idempotencyKey. */
const idempotentMutations = new Set(["orders.add"]);

export function idempotencyKeyLink(): TRPCLink<AppRouter> {
  return () =>
    ({ op, next }) =>
      observable((observer) => {
        const input = op.input;
        const keyed =
          op.type === "mutation" &&
          idempotentMutations.has(op.path) &&
          typeof input === "object" &&
          input !== null &&
          !("idempotencyKey" in input && input.idempotencyKey !== undefined)
            ? { ...op, input: { ...input, idempotencyKey: globalThis.crypto.randomUUID() } }
            : op;
        return next(keyed).subscribe(observer);
      });
}

export interface RetryOptions {
  /** Attempts in all, the first included (default 4). */
  attempts?: number;
  /** The first retry's delay; each further one doubles it, with jitter (default 200 ms). */
  baseDelayMs?: number;
}

/**
 * Answers worth trying again: 503 (that attempt stored nothing, and never will;
 * the retry, with the same idempotency key, may store it, once), 504 (the outcome
 * is unknown: the same idempotency key makes the retry store it at most once), or
 * no answer at all (connection refused, reset, cut).
 */
const transientCodes = new Set(["SERVICE_UNAVAILABLE", "GATEWAY_TIMEOUT"]);

export function isTransient(error: TRPCClientError<AppRouter>): boolean {
  if (error.data) return transientCodes.has(error.data.code);
  // No tRPC error body: the request never got a server's answer.
  return error.cause !== undefined && !(error.cause instanceof SyntaxError);
}

/** Retries what may safely be retried: queries, and mutations that carry an idempotency key. */
export function safeRetryLink({ attempts = 4, baseDelayMs = 200 }: RetryOptions = {}): TRPCLink<AppRouter> {
  return retryLink<AppRouter>({
    retry: ({ op, error, attempts: made }) =>
      made < attempts &&
      isTransient(error) &&
      (op.type === "query" || (op.type === "mutation" && idempotentMutations.has(op.path))),
    retryDelayMs: (made) => baseDelayMs * 2 ** (made - 1) * (0.5 + Math.random() / 2),
  });
}
