// Spans for the cache, wrapped around it only when tracing is on: each lookup
// with its result (hit, miss, or bypass when the cache is skipped: no-store,
// Valkey down, no applier seen) and tags, the load a miss makes (the SQL
// nests under it), each invalidation, the response cache's check of a kept
// response's tokens (a lookup too: hit or miss); and each Valkey command of
// the store.
import { SpanKind, type Tracer } from "@opentelemetry/api";
import {
  ATTR_DB_OPERATION_BATCH_SIZE,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_SYSTEM_NAME,
} from "@opentelemetry/semantic-conventions";
import type { Cache, Lookup, ReadRequest } from "../cache/query-cache.ts";
import type { CacheStore, StoreEntry } from "../cache/store.ts";
import { inSpan } from "./spans.ts";

export function resultOf(lookup: Lookup): "hit" | "miss" | "bypass" {
  if (lookup.tokens === undefined) return "bypass";
  return lookup.payload === undefined ? "miss" : "hit";
}

export function tracedCache(cache: Cache, tracer: Tracer): Cache {
  const { reporting, isCurrent } = cache;
  const lookup = (request: ReadRequest) =>
    inSpan(
      tracer,
      "cache lookup",
      { attributes: { "cache.procedure": request.procedure, "cache.tags": [...request.tags] } },
      async (span) => {
        const found = await cache.lookup(request);
        span?.setAttributes({ "cache.result": resultOf(found), "cache.key": found.key });
        return found;
      },
    );
  return {
    lookup,
    async read(request, load, prior) {
      const found = prior ?? (await lookup(request));
      return cache.read(
        request,
        () => inSpan(tracer, "cache load", { attributes: { "cache.procedure": request.procedure } }, load),
        found,
      );
    },
    invalidate: (tags) =>
      inSpan(tracer, "cache invalidate", { attributes: { "cache.tags": [...tags] } }, async (span) => {
        const told = await cache.invalidate(tags);
        span?.setAttribute("cache.invalidated", told);
        return told;
      }),
    // The response cache's reads are traced as any (the view reports what each answered under).
    ...(reporting && { reporting: (sink) => tracedCache(reporting.call(cache, sink), tracer) }),
    ...(isCurrent && {
      isCurrent: (tags, tokens) =>
        inSpan(
          tracer,
          "cache lookup",
          { attributes: { "cache.tags": [...tags], "cache.tier": "response" } },
          async (span) => {
            const current = await isCurrent.call(cache, tags, tokens);
            span?.setAttribute("cache.result", current ? "hit" : "miss");
            return current;
          },
        ),
    }),
    get status() {
      return cache.status;
    },
    ready: (timeoutMs) => cache.ready(timeoutMs),
    close: () => cache.close(),
  };
}

/** Valkey's commands, one span each; the in-process store has none worth a span. */
export function tracedStore(store: CacheStore, tracer: Tracer): CacheStore {
  if (store.kind !== "valkey") return store;
  const command = <T>(name: string, keys: number, run: () => Promise<T>) =>
    inSpan(
      tracer,
      name,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          [ATTR_DB_SYSTEM_NAME]: "valkey",
          [ATTR_DB_OPERATION_NAME]: name,
          [ATTR_DB_OPERATION_BATCH_SIZE]: keys,
        },
      },
      run,
    );
  return {
    kind: store.kind,
    get lastConnectionError() {
      return store.lastConnectionError;
    },
    mget: (keys) => command("MGET", keys.length, () => store.mget(keys)),
    mset: (entries: readonly StoreEntry[]) => command("SET", entries.length, () => store.mset(entries)),
    setIfAbsent: (entry) => command("SET NX", 1, () => store.setIfAbsent(entry)),
    close: () => store.close(),
  };
}
