import type { IncomingMessage } from "node:http";
import type { Prefetched } from "../cache/policy.ts";
import type { Context } from "../trpc.ts";

/**
 * A request with `Cache-Control: no-store` is answered without the cache
 * (nothing read from it or stored in it). `no-cache` needs nothing: every hit
 * is already revalidated against the writes since it was stored (its tags'
 * tokens), which is what the directive asks of a cache.
 */
export function bypassesCache(req: IncomingMessage): boolean {
  const header = req.headers["cache-control"];
  return header !== undefined && /(?:^|,)\s*no-store\s*(?:,|$)/i.test(header);
}

/** The request's context: the shared one, or a copy with what this request says (credentials, no-store, the hit path's findings). */
export function contextFor(base: Context, req: IncomingMessage, prefetched?: Prefetched): Context {
  const { authorization } = req.headers;
  const bypass = bypassesCache(req);
  if (!authorization && !bypass && !prefetched) return base;
  return { ...base, authorization, prefetched, cacheMode: bypass ? "no-store" : base.cacheMode };
}
