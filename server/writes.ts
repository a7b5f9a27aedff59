// Answers that are true, for writes. A write is answered:
// - with its result when PostgreSQL committed it (or an earlier attempt with
//   the same key did);
// - 503 SERVICE_UNAVAILABLE, "this attempt stored nothing, and never will",
//   only when that is proven: PostgreSQL reported the attempt failed (an ERROR
//   aborts its transaction; a failed connect sent nothing), or a tombstone now
//   stands in its place, so it can never commit (db/add-order.ts, settle_write).
//   It is said of the attempt, not of the key: a retry with the same key, or
//   another request carrying it meanwhile, may store the order (exactly once);
// - 504 GATEWAY_TIMEOUT when its outcome can't be known in time (its commit
//   still waits, e.g. on a synchronous standby, or PostgreSQL can't be asked):
//   a retry with the same key settles it to exactly one row.
// Serialization failures and deadlocks (40001, 40P01) abort the attempt, so
// they are retried here, a few times.
import { randomUUID } from "node:crypto";
import { TRPCError } from "@trpc/server";
import { isDatabaseUnavailable, isRetryableConflict, provesNotCommitted } from "./database-errors.ts";
import type { Metrics } from "./metrics.ts";

const attempts = 3;

export interface WriteRun<T> {
  /** When the caller must have its answer (epoch ms). */
  answerBy: number;
  /** One attempt, under its own id; lock waits end at `deadline`. */
  attempt(attemptId: string, deadline: Date): Promise<T>;
  /** What became of an attempt that didn't answer: its result, or "absent" (proven never to store anything). */
  settle(attemptId: string, waitMs: number): Promise<T | "absent">;
  metrics: Metrics;
}

export const notStored = () =>
  new TRPCError({
    code: "SERVICE_UNAVAILABLE",
    message:
      "The database is unavailable: this attempt stored nothing, and never will; retry with the same Idempotency-Key (the order is stored at most once).",
  });

export const outcomeUnknown = () =>
  new TRPCError({
    code: "GATEWAY_TIMEOUT",
    message:
      "The database did not confirm this write in time, so it may or may not be stored; retry with the same Idempotency-Key to learn which (it is stored at most once).",
  });

class AttemptTimedOut extends Error {
  override name = "AttemptTimedOut";
}

export async function runWrite<T>(run: WriteRun<T>): Promise<T> {
  const { answerBy, metrics } = run;
  // Time kept for settling: the answer is due at answerBy, whatever happens.
  const settleMs = Math.min(1000, Math.max(50, (answerBy - Date.now()) / 4));
  for (let made = 1; ; made++) {
    const attemptId = randomUUID();
    const deadline = answerBy - settleMs;
    try {
      const result = await within(run.attempt(attemptId, new Date(deadline)), deadline - Date.now());
      metrics.writeOutcomes.inc({ outcome: "committed" });
      return result;
    } catch (error) {
      if (error instanceof TRPCError) throw error;
      if (error instanceof AttemptTimedOut || !provesNotCommitted(error)) {
        return settle(run, attemptId, Math.max(1, answerBy - Date.now()));
      }
      metrics.writeOutcomes.inc({ outcome: "refused" });
      if (isRetryableConflict(error) && made < attempts && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 5 * made * (0.5 + Math.random())));
        continue;
      }
      if (isRetryableConflict(error) || isDatabaseUnavailable(error)) throw notStored();
      throw error;
    }
  }
}

async function settle<T>(run: WriteRun<T>, attemptId: string, waitMs: number): Promise<T> {
  let found: T | "absent";
  try {
    found = await within(run.settle(attemptId, waitMs), waitMs + 250);
  } catch {
    run.metrics.writeOutcomes.inc({ outcome: "unknown" });
    throw outcomeUnknown();
  }
  run.metrics.writeOutcomes.inc({ outcome: "settled" });
  if (found === "absent") throw notStored();
  return found;
}

async function within<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AttemptTimedOut("no answer in time")), Math.max(0, ms));
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
