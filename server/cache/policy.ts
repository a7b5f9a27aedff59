// A cached query's policy, declared once and read by both ways a hit can be
// answered: the procedure itself (cachedQuery) and a front that answers hits
// before tRPC runs (this app's HTTP hit path). Everything a hit depends on is
// here, so the two can't disagree: the input schema, the tags, the TTL, and the
// check that must pass before the cache is consulted at all.
//
// A policy knows no app: `TContext` is whatever its `authorize` needs to see of
// a request's context (nothing, by default), so any tRPC app can declare one.
import type { z } from "zod";
import { type ParseOnce, parseOnce } from "../parse-once.ts";
import type { CacheMode, Lookup, ReadRequest } from "./query-cache.ts";

export interface CachePolicy<TSchema extends z.ZodType = z.ZodType, TContext = unknown> {
  /** The procedure's path, e.g. "orders.count". */
  readonly procedure: string;
  readonly input: TSchema;
  /** The tags the result depends on. */
  tags(input: z.output<TSchema>): readonly string[];
  /** Overrides the cache's default TTL for this procedure. */
  readonly ttlSeconds?: number;
  /** Runs before the cache is consulted, on hits and misses alike; throws (a TRPCError) to refuse. */
  authorize?(ctx: TContext): void;
}

/** How a request asks to use the cache: "no-store" reads the source and leaves the cache alone. */
export interface CacheModeOption {
  readonly cacheMode?: CacheMode | undefined;
}

/** A policy plus the one input parser its procedure and a hit path share. */
export interface DeclaredPolicy<TSchema extends z.ZodType = z.ZodType, TContext = unknown>
  extends CachePolicy<TSchema, TContext>,
    Pick<ParseOnce<TSchema>, "parser" | "parse"> {
  /** The cache read for `input`; any object with a `cacheMode` (a request's context) can be passed as `options`. */
  request(input: z.output<TSchema>, options?: CacheModeOption): ReadRequest;
}

/**
 * What a front that answers hits before tRPC (the HTTP hit path) found,
 * handed to the procedure through the request's context on a miss: the raw
 * input object it parsed (tRPC is given this very object, so the parse is
 * reused) and its cache lookup (so the miss doesn't look up again before
 * reading the database).
 */
export interface Prefetched {
  procedure: string;
  raw: unknown;
  input: unknown;
  lookup: Lookup;
  /** When the request must have its answer (epoch ms): its budget counts from its arrival, not from tRPC's turn. */
  answerBy: number;
}

/** Declares a policy; `TContext` is taken from `authorize`'s parameter (see createCaching for one bound to an app's context). */
export function declarePolicy<TSchema extends z.ZodType, TContext = unknown>(
  policy: CachePolicy<TSchema, TContext>,
): DeclaredPolicy<TSchema, TContext> {
  const { parser, parse } = parseOnce(policy.input);
  return {
    ...policy,
    parser,
    parse,
    request: (input, options) => ({
      procedure: policy.procedure,
      input,
      tags: policy.tags(input),
      ttlSeconds: policy.ttlSeconds,
      mode: options?.cacheMode ?? "default",
    }),
  };
}

/** The registry a hit path reads: every cached procedure's policy, by path. */
export function policyRegistry<TContext>(
  policies: readonly DeclaredPolicy<z.ZodType, TContext>[],
): ReadonlyMap<string, DeclaredPolicy<z.ZodType, TContext>> {
  return new Map(policies.map((policy) => [policy.procedure, policy]));
}
