// What procedures declare: cached queries by their policy, `invalidates` on mutations.
//
//   count: cachedQuery(countPolicy, { summary, output, example }, ({ ctx, input }) => ...)
//
// A cached query is built here, not assembled by hand, so nothing can run
// before its cache check except what its policy declares (`authorize`), which
// the HTTP hit path runs too. The cache is read in the resolver: a hit is
// simply the resolver's return value, no middleware has to end the chain.
import type { TRPCError, TRPCMiddlewareFunction } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import type { z } from "zod";
import { type About, declare } from "../routers/documented.ts";
import { type Context, publicProcedure } from "../trpc.ts";
import type { DeclaredPolicy } from "./policy.ts";

/** A cached query, declared for the API document with `about`: it answers `about.output`'s type. */
export function cachedQuery<TSchema extends z.ZodType, TOutput extends z.ZodType>(
  policy: DeclaredPolicy<TSchema>,
  about: About<TOutput, z.input<TSchema>>,
  resolve: (opts: { ctx: Context; input: z.output<TSchema> }) => Promise<z.output<TOutput>>,
) {
  const procedure = publicProcedure
    // The hit path already parsed this request's input: give tRPC that same object, whose parse is remembered.
    .use(({ ctx, path, next }) => {
      const prefetched = ctx.prefetched;
      return prefetched?.procedure === path ? next({ getRawInput: async () => prefetched.raw }) : next();
    })
    .input(policy.parser)
    .query(({ ctx, input: parsed, path }) => {
      // tRPC types an input as possibly unset; this one comes from policy.parser, so it is set.
      const input = parsed as z.output<TSchema>;
      if (path !== policy.procedure) throw new Error(`the cache policy of ${policy.procedure} is used by ${path}`);
      policy.authorize?.(ctx);
      const { prefetched } = ctx;
      const prior = prefetched?.procedure === path && prefetched.input === input ? prefetched.lookup : undefined;
      return ctx.cache.read(policy.request(input, ctx), () => resolve({ ctx, input }), prior);
    });
  return declare({ ...about, kind: "query", input: policy.input }, procedure);
}

type CacheMiddleware<TInput> = TRPCMiddlewareFunction<Context, object, object, object, TInput>;

export interface InvalidatesOptions<TInput> {
  /** The tags the mutation affects; `output` is the resolver's result, undefined if it failed. */
  tags: (input: TInput, output: unknown) => readonly string[];
}

/**
 * Whether a mutation's error proves that nothing was committed. Mutations
 * answer a client error (4xx: invalid input, unknown customer, conflict) only
 * when they know the write did not happen; a server error (a timeout, a lost
 * connection, anything unexpected) may hide a commit whose answer was lost.
 */
export function provesNothingCommitted(error: TRPCError): boolean {
  return getHTTPStatusCodeFromError(error) < 500;
}

export function invalidates<TInput>({ tags }: InvalidatesOptions<TInput>): CacheMiddleware<TInput> {
  return async ({ ctx, input, next }) => {
    const result = await next();
    if (!result.ok && provesNothingCommitted(result.error)) return result; // nothing to invalidate
    // After the commit and before the reply. Also after a failure that may
    // hide a commit (an unknown outcome): a bump too many only costs a miss.
    // A bump that fails keeps this instance's cache closed until the change
    // log is replayed (query-cache.ts), and the applier bumps it for the others.
    await ctx.cache.invalidate(tags(input, result.ok ? result.data : undefined));
    return result;
  };
}
