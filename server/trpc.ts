// tRPC's root: context, error shape, and the base procedure every router uses.
import { type inferProcedureBuilderResolverOptions, initTRPC, TRPCError } from "@trpc/server";
import superjson from "superjson";
import { ZodError, z } from "zod";
import type { Database } from "../db/client.ts";
import type { Queries } from "../db/queries.ts";
import { bearerMatches } from "./auth.ts";
import type { Applier } from "./cache/applier.ts";
import { createCaching } from "./cache/middleware.ts";
import type { Cache, CacheMode } from "./cache/query-cache.ts";
import { isDatabaseUnavailable } from "./database-errors.ts";
import { describeIssues } from "./inputs.ts";
import type { CountHub } from "./live/count-hub.ts";
import type { Logger } from "./logger.ts";
import type { Metrics } from "./metrics.ts";

export interface Context {
  db: Database;
  /** A few connections of their own, for learning what became of a write whose answer didn't come. */
  settler: Database;
  queries: Queries;
  log: Logger;
  cache: Cache;
  /** "no-store" when the request's Cache-Control says so: the cache is then neither read nor written. */
  cacheMode: CacheMode;
  /** Applies the change log to the cache (and watches that someone does); absent in tests that bring their own cache. */
  applier?: Applier | undefined;
  metrics: Metrics;
  /** When set, mutations need `Authorization: Bearer <apiToken>`. */
  apiToken?: string | undefined;
  /** The request's Authorization header. */
  authorization?: string | undefined;
  /** A procedure still waiting on the database after this long answers SERVICE_UNAVAILABLE. */
  databaseTimeoutMs: number;
  /** Live counts (orders.watchCount, GET /count/stream); absent in tests that bring their own parts. */
  live?: CountHub | undefined;
}

/** Every live stream sends a comment this often, so proxies keep it open and clients notice a dead one. */
export const heartbeatMs = 15_000;

/** Subscriptions over SSE: heartbeats, and a client that hears nothing for three of them reconnects. */
export const sseOptions = {
  ping: { enabled: true, intervalMs: heartbeatMs },
  client: { reconnectAfterInactivityMs: 3 * heartbeatMs },
} as const;

const t = initTRPC.context<Context>().create({
  transformer: superjson,
  sse: sseOptions,
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
 * Around every procedure: times the call for /metrics, turns "the database
 * can't be reached" into SERVICE_UNAVAILABLE, and bounds the wait, since a hung
 * server or network must not hold the caller. A query still waiting after the
 * budget answers SERVICE_UNAVAILABLE (it changed nothing); a mutation gets
 * `answerBy` instead and answers by then with what is true of its write
 * (server/writes.ts), which only it can learn. One middleware, not three: each
 * level of tRPC's chain costs a copy of the call's options.
 */
const guarded = t.middleware(async ({ ctx, path, type, next }) => {
  const answerBy = Date.now() + ctx.databaseTimeoutMs;
  const stop = ctx.metrics.procedureDuration.startTimer({ procedure: path, type });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    if (type !== "mutation") timer = setTimeout(() => reject(unavailable()), Math.max(0, answerBy - Date.now()));
  });
  try {
    const result = await Promise.race([next({ ctx: { answerBy } }), timeout]);
    // A mutation's errors already say whether it stored anything (server/writes.ts).
    if (!result.ok && type !== "mutation" && isDatabaseUnavailable(result.error.cause)) throw unavailable();
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

/** What every procedure's resolver is given: the request's context, and its deadline (`answerBy`). */
export type ProcedureContext = inferProcedureBuilderResolverOptions<typeof publicProcedure>["ctx"];

/**
 * Cached queries on publicProcedure and invalidating mutations
 * (server/cache/middleware.ts), told how to reach the cache from this app's
 * context: its cache and the request's Cache-Control (no-store).
 */
export const caching = createCaching(publicProcedure, {
  cache: (ctx) => ctx.cache,
  mode: (ctx) => ctx.cacheMode,
});

/** Writes: with API_TOKEN set, only callers presenting it as a bearer token get through. */
export const writeProcedure = publicProcedure.use(({ ctx, next }) => {
  if (ctx.apiToken !== undefined && !bearerMatches(ctx.apiToken, ctx.authorization)) {
    throw new TRPCError({ code: "UNAUTHORIZED", message: "Writes need the header Authorization: Bearer <API_TOKEN>." });
  }
  return next();
});
