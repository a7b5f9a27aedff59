// tRPC's root: context, error shape, and the base procedure every router uses.
import { initTRPC, TRPCError } from "@trpc/server";
import superjson from "superjson";
import { ZodError, z } from "zod";
import type { Database } from "../db/client.ts";
import type { Queries } from "../db/queries.ts";
import { bearerMatches } from "./auth.ts";
import type { DatabaseChanges } from "./cache/database-changes.ts";
import type { Prefetched } from "./cache/policy.ts";
import type { Cache, CacheMode } from "./cache/query-cache.ts";
import { isDatabaseUnavailable } from "./database-errors.ts";
import { describeIssues } from "./inputs.ts";
import type { Logger } from "./logger.ts";
import type { Metrics } from "./metrics.ts";

export interface Context {
  db: Database;
  queries: Queries;
  log: Logger;
  cache: Cache;
  /** "no-store" when the request's Cache-Control says so: the cache is then neither read nor written. */
  cacheMode: CacheMode;
  /** The PostgreSQL change listener; absent on the embedded database, which only this process writes. */
  changes?: DatabaseChanges | undefined;
  metrics: Metrics;
  /** When set, mutations need `Authorization: Bearer <apiToken>`. */
  apiToken?: string | undefined;
  /** The request's Authorization header. */
  authorization?: string | undefined;
  /** What the HTTP hit path found for this request's cached query before it fell through to tRPC (a miss). */
  prefetched?: Prefetched | undefined;
  /** A procedure still waiting on the database after this long answers SERVICE_UNAVAILABLE. */
  databaseTimeoutMs: number;
}

const t = initTRPC.context<Context>().create({
  transformer: superjson,
  // Never send stack traces, whatever NODE_ENV says.
  isDev: false,
  errorFormatter({ shape, error }) {
    const invalid = error.code === "BAD_REQUEST" && error.cause instanceof ZodError ? error.cause : undefined;
    return {
      ...shape,
      // An unexpected error's message may quote SQL, parameters or a host: keep it in the log only.
      message: invalid
        ? describeIssues(invalid)
        : error.code === "INTERNAL_SERVER_ERROR"
          ? "Internal server error"
          : // superjson's input (its meta) nested deeper than the stack: say so, not "Maximum call stack size exceeded".
            error.code === "BAD_REQUEST" && error.cause instanceof RangeError
            ? "The input is nested too deeply"
            : shape.message,
      data: {
        code: shape.data.code,
        httpStatus: shape.data.httpStatus,
        ...(shape.data.path === undefined ? {} : { path: shape.data.path }),
        // The failing input fields and what is wrong with each.
        ...(invalid ? { fields: fieldErrors(invalid) } : {}),
      },
    };
  },
});

/** Each failing input field and its messages, typed for clients as the record it is. */
function fieldErrors(error: ZodError): Record<string, string[] | undefined> {
  return z.flattenError(error).fieldErrors;
}

const unavailable = () =>
  new TRPCError({ code: "SERVICE_UNAVAILABLE", message: "The database is unavailable; try again shortly." });

/**
 * The instant past which a write started at `startedAt` must not commit. The
 * caller hears 503 only at `startedAt + budget`, a margin later, so a commit
 * the database checks against this deadline can't happen after the 503 unless
 * the two hosts' clocks differ by more than the margin.
 */
export function writeDeadline(startedAt: number, budgetMs: number): Date {
  return new Date(startedAt + budgetMs - Math.min(1000, budgetMs / 4));
}

/**
 * Around every procedure: times the call for /metrics, turns "the database
 * can't be reached" into SERVICE_UNAVAILABLE, and bounds the wait, since a hung
 * server or network must not hold the caller. Reads end with their
 * statement_timeout; writes get `deadline`, which their transaction checks
 * when it commits (db/add-order.ts), so a write answered 503 here never
 * commits later. One middleware, not three: each level of tRPC's chain costs a
 * copy of the call's options.
 */
const guarded = t.middleware(async ({ ctx, path, type, next }) => {
  const startedAt = Date.now();
  const stop = ctx.metrics.procedureDuration.startTimer({ procedure: path, type });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unavailable()), ctx.databaseTimeoutMs);
  });
  try {
    const deadline = writeDeadline(startedAt, ctx.databaseTimeoutMs);
    const result = await Promise.race([next({ ctx: { deadline } }), timeout]);
    if (!result.ok && isDatabaseUnavailable(result.error.cause)) throw unavailable();
    stop({ outcome: result.ok ? "ok" : result.error.code });
    return result;
  } catch (error) {
    stop({ outcome: "SERVICE_UNAVAILABLE" });
    throw error;
  } finally {
    clearTimeout(timer);
  }
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;
export const publicProcedure = t.procedure.use(guarded);

/** Writes: with API_TOKEN set, only callers presenting it as a bearer token get through. */
export const writeProcedure = publicProcedure.use(({ ctx, next }) => {
  if (ctx.apiToken !== undefined && !bearerMatches(ctx.apiToken, ctx.authorization)) {
    throw new TRPCError({ code: "UNAUTHORIZED", message: "Writes need the header Authorization: Bearer <API_TOKEN>." });
  }
  return next();
});
