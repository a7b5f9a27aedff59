// A cached query's policy, declared once and read by the procedure that
// answers from the cache (cachedQuery): the input schema, the tags the result
// depends on, the TTL, and the check that must pass before the cache is
// consulted at all.
//
// A policy knows no app: `TContext` is whatever its `authorize` needs to see of
// a request's context (nothing, by default), so any tRPC app can declare one.
import type { z } from "zod";
import type { CacheMode, ReadRequest } from "./query-cache.ts";

export interface CachePolicy<TSchema extends z.ZodType = z.ZodType, TContext = unknown> {
  /** The procedure's path, e.g. "orders.count". */
  readonly procedure: string;
  readonly input: TSchema;
  /** The tags the result depends on. */
  tags(input: z.output<TSchema>): readonly string[];
  /** Overrides the cache's default TTL for this procedure. */
  readonly ttlSeconds?: number;
  /**
   * Runs before the cache is consulted, on hits and misses alike; throws (a
   * TRPCError) to refuse. An HTTP cache in front of the app (this service's
   * response cache) answers a request with the same headers without running
   * it, so it must depend only on the request's headers and the configuration.
   */
  authorize?(ctx: TContext): void;
}

/** How a request asks to use the cache: "no-store" reads the source and leaves the cache alone. */
export interface CacheModeOption {
  readonly cacheMode?: CacheMode | undefined;
}

/** A policy and the cache read it makes of an input. */
export interface DeclaredPolicy<TSchema extends z.ZodType = z.ZodType, TContext = unknown>
  extends CachePolicy<TSchema, TContext> {
  /** The cache read for `input`; any object with a `cacheMode` (a request's context) can be passed as `options`. */
  request(input: z.output<TSchema>, options?: CacheModeOption): ReadRequest;
}

/** Declares a policy; `TContext` is taken from `authorize`'s parameter (see createCaching for one bound to an app's context). */
export function declarePolicy<TSchema extends z.ZodType, TContext = unknown>(
  policy: CachePolicy<TSchema, TContext>,
): DeclaredPolicy<TSchema, TContext> {
  return {
    ...policy,
    request: (input, options) => ({
      procedure: policy.procedure,
      input,
      tags: policy.tags(input),
      ttlSeconds: policy.ttlSeconds,
      mode: options?.cacheMode ?? "default",
    }),
  };
}
