// What procedures declare: cached queries by their policy, `invalidates` on mutations.
//
//   count: cachedQuery(countPolicy, ({ ctx, input }) => ...)
//
// A cached query is built here, not assembled by hand, so nothing can run
// before its cache check except what its policy declares (`authorize`), which
// the HTTP hit path runs too. The cache is read in the resolver: a hit is
// simply the resolver's return value, no middleware has to end the chain.
import type { TRPCMiddlewareFunction } from "@trpc/server";
import type { z } from "zod";
import { type Context, publicProcedure } from "../trpc.ts";
import type { DeclaredPolicy } from "./policy.ts";

export function cachedQuery<TSchema extends z.ZodType, TOutput>(
  policy: DeclaredPolicy<TSchema>,
  resolve: (opts: { ctx: Context; input: z.output<TSchema> }) => Promise<TOutput>,
) {
  return (
    publicProcedure
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
      })
  );
}

type CacheMiddleware<TInput> = TRPCMiddlewareFunction<Context, object, object, object, TInput>;

export interface InvalidatesOptions<TInput> {
  /** The tags the mutation affects; `output` is the resolver's result, undefined if it failed. */
  tags: (input: TInput, output: unknown) => readonly string[];
}

export function invalidates<TInput>({ tags }: InvalidatesOptions<TInput>): CacheMiddleware<TInput> {
  return async ({ ctx, input, next }) => {
    const result = await next();
    // After the commit and before the reply. Also after a failure: the write may
    // have committed before its acknowledgement was lost.
    await ctx.cache.invalidate(tags(input, result.ok ? result.data : undefined));
    return result;
  };
}
