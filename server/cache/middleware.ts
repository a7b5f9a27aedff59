// What procedures declare: `cached` on queries, `invalidates` on mutations.
//
//   count: publicProcedure
//     .input(countOrdersInput)
//     .use(cached({ tags: (input) => [orderTags.all] }))
//     .query(...)
//
// The input is typed by the procedure's own input parser.

import type { TRPCError, TRPCMiddlewareFunction } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import { middlewareMarker } from "@trpc/server/unstable-core-do-not-import";
import type { Context } from "../trpc.ts";

type CacheMiddleware<TInput> = TRPCMiddlewareFunction<Context, object, object, object, TInput>;

export interface CachedOptions<TInput> {
  /** The tags the result depends on. */
  tags: (input: TInput) => readonly string[];
  /** Overrides CACHE_TTL_SECONDS for this procedure. */
  ttlSeconds?: number;
}

/** Marks a procedure's cached() middleware, so the HTTP fast path can find its declaration. */
export const cacheDeclaration = Symbol("cacheDeclaration");

export function cached<TInput>({ tags, ttlSeconds }: CachedOptions<TInput>): CacheMiddleware<TInput> {
  const middleware: CacheMiddleware<TInput> & { [cacheDeclaration]?: CachedOptions<TInput> } = async ({
    ctx,
    path,
    input,
    next,
  }) => {
    const request = { procedure: path, input, tags: tags(input), ttlSeconds, mode: ctx.cacheMode };
    const data = await ctx.cache.read(request, async () => {
      const result = await next();
      if (!result.ok) throw result.error; // errors are never cached
      return result.data;
    });
    // A hit ends the chain here, with the same result the resolver's own middleware returns.
    return { ok: true, data, marker: middlewareMarker };
  };
  middleware[cacheDeclaration] = { tags, ttlSeconds };
  return middleware;
}

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
    const write = ctx.cache.beginOwnWrite?.();
    let bumped = false;
    try {
      const result = await next();
      if (!result.ok && provesNothingCommitted(result.error)) {
        bumped = true; // nothing to invalidate
        return result;
      }
      // After the commit and before the reply. Also after a failure that may
      // hide a commit whose acknowledgement was lost.
      bumped = await ctx.cache.invalidate(tags(input, result.ok ? result.data : undefined));
      return result;
    } finally {
      write?.end(bumped);
    }
  };
}
