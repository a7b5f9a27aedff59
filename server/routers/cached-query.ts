// This app's cached queries: server/cache's, bound to publicProcedure
// (trpc.ts), and declared for the API document like every procedure
// (documented.ts). The cache module knows nothing of the document; this is
// where the two meet.
import type { TRPCMiddlewareFunction } from "@trpc/server";
import type { z } from "zod";
import type { InvalidatesOptions } from "../cache/middleware.ts";
import type { CachePolicy, DeclaredPolicy } from "../cache/policy.ts";
import { caching, type ProcedureContext } from "../trpc.ts";
import { type About, declare } from "./documented.ts";

/** A policy whose `authorize` sees this app's context. */
export function declarePolicy<TSchema extends z.ZodType>(
  policy: CachePolicy<TSchema, ProcedureContext>,
): DeclaredPolicy<TSchema, ProcedureContext> {
  return caching.declarePolicy(policy);
}

/** A mutation's middleware that invalidates the tags it affected (server/cache/middleware.ts). */
export function invalidates<TInput>(
  options: InvalidatesOptions<TInput>,
): TRPCMiddlewareFunction<ProcedureContext, object, object, object, TInput> {
  return caching.invalidates(options);
}

/** A cached query, declared for the API document with `about`: it answers `about.output`'s type. */
export function cachedQuery<TSchema extends z.ZodType, TOutput extends z.ZodType>(
  policy: DeclaredPolicy<TSchema, ProcedureContext>,
  about: About<TOutput, z.input<TSchema>>,
  resolve: (opts: { ctx: ProcedureContext; input: z.output<TSchema> }) => Promise<z.output<TOutput>>,
) {
  return declare({ ...about, kind: "query", input: policy.input }, caching.cachedQuery(policy, resolve));
}
