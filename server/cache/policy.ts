// A cached query's policy, declared once and read by both ways a hit can be
// answered: the procedure itself (cachedQuery) and the HTTP hit path, which
// answers hits before tRPC runs. Everything a hit depends on is here, so the
// two can't disagree: the input schema, the tags, the TTL, and the check that
// must pass before the cache is consulted at all.
import type { z } from "zod";
import { type ParseOnce, parseOnce } from "../parse-once.ts";
import type { Context } from "../trpc.ts";
import type { Lookup, ReadRequest } from "./query-cache.ts";

export interface CachePolicy<TSchema extends z.ZodType = z.ZodType> {
  /** The procedure's path, e.g. "orders.count". */
  readonly procedure: string;
  readonly input: TSchema;
  /** The tags the result depends on. */
  tags(input: z.output<TSchema>): readonly string[];
  /** Overrides CACHE_TTL_SECONDS for this procedure. */
  readonly ttlSeconds?: number;
  /** Runs before the cache is consulted, on hits and misses alike; throws (a TRPCError) to refuse. */
  authorize?(ctx: Context): void;
}

/** A policy plus the one input parser its procedure and the hit path share. */
export interface DeclaredPolicy<TSchema extends z.ZodType = z.ZodType>
  extends CachePolicy<TSchema>,
    Pick<ParseOnce<TSchema>, "parser" | "parse"> {
  request(input: z.output<TSchema>, ctx: Pick<Context, "cacheMode">): ReadRequest;
}

/**
 * What the HTTP hit path found, handed to the procedure through the request's
 * context on a miss: the raw input object it parsed (tRPC is given this very
 * object, so the parse is reused) and its cache lookup (so the miss doesn't
 * look up again before reading the database).
 */
export interface Prefetched {
  procedure: string;
  raw: unknown;
  input: unknown;
  lookup: Lookup;
  /** When the request must have its answer (epoch ms): its budget counts from its arrival, not from tRPC's turn. */
  answerBy: number;
}

export function declarePolicy<TSchema extends z.ZodType>(policy: CachePolicy<TSchema>): DeclaredPolicy<TSchema> {
  const { parser, parse } = parseOnce(policy.input);
  return {
    ...policy,
    parser,
    parse,
    request: (input, { cacheMode }) => ({
      procedure: policy.procedure,
      input,
      tags: policy.tags(input),
      ttlSeconds: policy.ttlSeconds,
      mode: cacheMode,
    }),
  };
}

/** The registry the HTTP hit path reads: every cached procedure's policy, by path. */
export function policyRegistry(policies: readonly DeclaredPolicy[]): ReadonlyMap<string, DeclaredPolicy> {
  return new Map(policies.map((policy) => [policy.procedure, policy]));
}
