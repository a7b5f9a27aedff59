// Answers hits of cached GET queries before tRPC runs: the same entry, checked
// by the same tag tokens (QueryCache.peek), rendered as the byte-identical
// response the normal path would send, with an ETag for conditional requests.
// Anything else (a miss, invalid input, Cache-Control, an error) falls through
// to the normal path, which reads, stores and reports it.
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AnyRouter } from "@trpc/server";
import { type CachedOptions, cacheDeclaration } from "../cache/middleware.ts";
import type { Context } from "../trpc.ts";
import { bypassesCache } from "./request-context.ts";

interface Declaration extends CachedOptions<unknown> {
  parse(input: unknown): { success: true; data: unknown } | { success: false };
}

export interface FastRoute {
  /** The procedure's path, e.g. "orders.count". */
  procedure: string;
  /** The input as the request states it, before validation. */
  rawInput: unknown;
  /** The response body, from the entry's serialized (superjson) value. */
  render: (payload: string) => string;
  headers?: Record<string, string>;
}

interface ProcedureDef {
  _def: { type: string; inputs: unknown[]; middlewares: ({ [cacheDeclaration]?: CachedOptions<unknown> } | object)[] };
}

/** The cached() declarations of a router's queries, by procedure path, with their input parsers. */
export function cacheDeclarations(router: AnyRouter): Map<string, Declaration> {
  const declarations = new Map<string, Declaration>();
  for (const [path, procedure] of Object.entries(router._def.procedures as Record<string, ProcedureDef>)) {
    const declared = procedure._def.middlewares.find((m) => cacheDeclaration in m) as
      | { [cacheDeclaration]: CachedOptions<unknown> }
      | undefined;
    const [parser, ...more] = procedure._def.inputs as { safeParse?: Declaration["parse"] }[];
    if (!declared || procedure._def.type !== "query" || more.length > 0) continue;
    const parse = parser?.safeParse?.bind(parser) ?? ((input: unknown) => ({ success: true as const, data: input }));
    declarations.set(path, { ...declared[cacheDeclaration], parse });
  }
  return declarations;
}

export class FastPath {
  constructor(
    private readonly context: Context,
    private readonly declarations: Map<string, Declaration>,
  ) {}

  /** Sends the cached response and returns true, or returns false and leaves the request to the normal path. */
  async serve(req: IncomingMessage, res: ServerResponse, route: FastRoute): Promise<boolean> {
    const declaration = this.declarations.get(route.procedure);
    if (!declaration || bypassesCache(req)) return false;
    const { cache, metrics } = this.context;
    try {
      const parsed = declaration.parse(route.rawInput);
      if (!parsed.success) return false;
      const stop = metrics.procedureDuration.startTimer({ procedure: route.procedure, type: "query" });
      const payload = await cache.peek({
        procedure: route.procedure,
        input: parsed.data,
        tags: declaration.tags(parsed.data),
        ttlSeconds: declaration.ttlSeconds,
      });
      if (payload === undefined) return false;
      const body = route.render(payload);
      const etag = `"${createHash("sha1").update(body).digest("base64url")}"`;
      if (matches(req.headers["if-none-match"], etag)) {
        res.writeHead(304, { etag, ...route.headers }).end();
      } else {
        res
          .writeHead(200, {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
            etag,
            ...route.headers,
          })
          .end(body);
      }
      stop({ outcome: "ok" });
      return true;
    } catch {
      return false;
    }
  }
}

function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(",").some((candidate) => {
    const tag = candidate.trim();
    return tag === "*" || tag === etag || tag === `W/${etag}`;
  });
}
