// What procedures declare: cached queries by their policy, `invalidates` on
// mutations. Built on tRPC's public API from what an app gives it, so any tRPC
// app can use it: its base procedure (where cached queries start) and how to
// reach the cache from that procedure's context.
//
//   const caching = createCaching(publicProcedure, { cache: (ctx) => ctx.cache });
//   count: caching.cachedQuery(countPolicy, ({ ctx, input }) => ...),
//   add: writeProcedure.input(...).use(caching.invalidates({ tags: (input) => [...] })).mutation(...),
//
// A cached query is built here, not assembled by hand, so nothing can run
// before its cache check but the base's middlewares and what its policy
// declares (`authorize`). The cache is read in the resolver: a hit is simply
// the resolver's return value, no middleware has to end the chain.
import type {
  inferProcedureBuilderResolverOptions,
  TRPCError,
  TRPCMiddlewareFunction,
  TRPCProcedureBuilder,
  TRPCQueryProcedure,
  TRPCUnsetMarker,
} from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import type { z } from "zod";
import { type CachePolicy, type DeclaredPolicy, declarePolicy } from "./policy.ts";
import type { Cache, CacheMode } from "./query-cache.ts";

/** A procedure builder without input or output yet, such as an app's `publicProcedure`. */
export type BaseProcedure<TContext, TMeta, TOverrides, TErrorShape> = TRPCProcedureBuilder<
  TContext,
  TMeta,
  TOverrides,
  TRPCUnsetMarker,
  TRPCUnsetMarker,
  TRPCUnsetMarker,
  TRPCUnsetMarker,
  false,
  TErrorShape
>;

/** The context a base procedure's resolvers see: the app's, as the base's middlewares left it. */
export type ResolverContext<TContext, TMeta, TOverrides, TErrorShape> = inferProcedureBuilderResolverOptions<
  BaseProcedure<TContext, TMeta, TOverrides, TErrorShape>
>["ctx"];

/** How cached procedures reach the cache, and what else they need, from a request's context. */
export interface CacheAccess<TContext> {
  cache(ctx: TContext): Pick<Cache, "read" | "invalidate">;
  /** "no-store" for a request that must neither read nor fill the cache; "default" when absent. */
  mode?(ctx: TContext): CacheMode | undefined;
}

/** A cached query's resolver: what a miss runs to get the value. */
export type CachedResolver<TContext, TSchema extends z.ZodType, TResult> = (opts: {
  ctx: TContext;
  input: z.output<TSchema>;
}) => Promise<TResult>;

/** A query procedure as tRPC itself types `.input(schema).query(resolver)`. */
export type CachedQueryProcedure<TSchema extends z.ZodType, TResult, TMeta, TErrorShape> = TRPCQueryProcedure<{
  input: z.input<TSchema>;
  output: TResult;
  meta: TMeta;
  errorShape: TErrorShape;
}>;

export interface InvalidatesOptions<TInput> {
  /** The tags the mutation affects; `output` is the resolver's result, undefined if it failed. */
  tags: (input: TInput, output: unknown) => readonly string[];
}

/** Cached queries and invalidating mutations for the procedures of one base, typed by its context. */
export interface Caching<TContext, TMeta, TErrorShape> {
  /** A policy whose `authorize` sees this base's context. */
  declarePolicy<TSchema extends z.ZodType>(policy: CachePolicy<TSchema, TContext>): DeclaredPolicy<TSchema, TContext>;
  /** A query answering from the cache by `policy`, running `resolve` on a miss; mount it at `policy.procedure`. */
  cachedQuery<TSchema extends z.ZodType, TResult>(
    policy: DeclaredPolicy<TSchema, TContext>,
    resolve: CachedResolver<TContext, TSchema, TResult>,
  ): CachedQueryProcedure<TSchema, TResult, TMeta, TErrorShape>;
  /** A mutation's middleware: after it ran, the tags it affected get new versions (entries depending on them retire). */
  invalidates<TInput>(
    options: InvalidatesOptions<TInput>,
  ): TRPCMiddlewareFunction<TContext, object, object, object, TInput>;
}

/**
 * Cached procedures on `base`, reaching the cache through `access`. Generic
 * over the app's tRPC types: the context, meta and error shape are `base`'s.
 */
export function createCaching<TContext, TMeta, TOverrides, TErrorShape>(
  base: BaseProcedure<TContext, TMeta, TOverrides, TErrorShape>,
  access: CacheAccess<ResolverContext<TContext, TMeta, TOverrides, TErrorShape>>,
): Caching<ResolverContext<TContext, TMeta, TOverrides, TErrorShape>, TMeta, TErrorShape> {
  type BaseContext = ResolverContext<TContext, TMeta, TOverrides, TErrorShape>;
  // tRPC hands every middleware and resolver of `base` this very context type, but names it in a form
  // the compiler can't match with BaseContext while the app's types are still parameters here.
  const contextOf = (opts: { ctx: unknown }) => opts.ctx as BaseContext;
  return {
    declarePolicy: (policy) => declarePolicy(policy),

    cachedQuery<TSchema extends z.ZodType, TResult>(
      policy: DeclaredPolicy<TSchema, BaseContext>,
      resolve: CachedResolver<BaseContext, TSchema, TResult>,
    ) {
      const procedure = base.input(policy.input).query((opts) => {
        const { path } = opts;
        const ctx = contextOf(opts);
        // tRPC types an input as possibly unset; this one comes from policy.input, so it is set.
        const input = opts.input as z.output<TSchema>;
        if (path !== policy.procedure) throw new Error(`the cache policy of ${policy.procedure} is used by ${path}`);
        policy.authorize?.(ctx);
        const request = policy.request(input, { cacheMode: access.mode?.(ctx) });
        return access.cache(ctx).read(request, () => resolve({ ctx, input }));
      });
      // The same type tRPC gives it, stated in the schema's and resolver's terms (tRPC's own form of it only
      // resolves once the app's types are known).
      return procedure as unknown as CachedQueryProcedure<TSchema, TResult, TMeta, TErrorShape>;
    },

    invalidates:
      ({ tags }) =>
      async ({ ctx, input, next }) => {
        const result = await next();
        if (!result.ok && provesNothingCommitted(result.error)) return result; // nothing to invalidate
        // After the commit and before the reply. Also after a failure that may
        // hide a commit (an unknown outcome): a bump too many only costs a miss.
        // A bump that fails keeps this instance's cache closed until the change
        // log is replayed (query-cache.ts), and the applier bumps it for the others.
        await access.cache(contextOf({ ctx })).invalidate(tags(input, result.ok ? result.data : undefined));
        return result;
      },
  };
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
