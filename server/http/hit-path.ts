// Answers hits of cached queries before tRPC runs, from their declared cache
// policy: the same input parse, the same authorization check, the same entry
// (checked by its tags' tokens), rendered as the bytes the normal path sends,
// with an ETag for conditional requests. On a miss the request goes on to the
// procedure carrying what was found (its parsed input and its lookup), so the
// miss neither parses nor looks up twice.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { DeclaredPolicy } from "../cache/policy.ts";
import type { Context } from "../trpc.ts";
import { bypassesCache, contextFor } from "./request-context.ts";

export interface Rendering {
  /** The response body, from the entry's serialized (superjson) value. */
  body: (payload: string) => string;
  contentType: string;
  headers?: Record<string, string>;
}

export class HitPath {
  constructor(private readonly context: Context) {}

  /** Sends the cached response and returns true; or returns false and leaves the request to the procedure. */
  async serve(
    req: FastifyRequest,
    reply: FastifyReply,
    policy: DeclaredPolicy,
    raw: unknown,
    rendering: Rendering,
  ): Promise<boolean> {
    if (bypassesCache(req.raw)) return false;
    const ctx = contextFor(this.context, req.raw);
    try {
      policy.authorize?.(ctx);
    } catch {
      return false; // the procedure refuses it, in its own words
    }
    const parsed = policy.parse(raw);
    if (!parsed) return false; // the procedure reports what is wrong
    const stop = ctx.metrics.procedureDuration.startTimer({ procedure: policy.procedure, type: "query" });
    let lookup: Awaited<ReturnType<Context["cache"]["lookup"]>>;
    try {
      lookup = await ctx.cache.lookup(policy.request(parsed.input, ctx));
    } catch {
      return false;
    }
    const { payload, tokens } = lookup;
    if (payload === undefined || tokens === undefined) {
      req.prefetched = { procedure: policy.procedure, raw, input: parsed.input, lookup };
      return false;
    }
    // The tags' tokens name this entry's version: any write it depends on changes them.
    const etag = `"${tokens.replaceAll(",", "/")}"`;
    // Written directly: a hit needs none of Fastify's reply machinery (serializers, hooks).
    reply.hijack();
    if (matches(req.headers["if-none-match"], etag)) reply.raw.writeHead(304, { etag, ...rendering.headers }).end();
    else {
      const body = rendering.body(payload);
      reply.raw
        .writeHead(200, {
          "content-type": rendering.contentType,
          "content-length": Buffer.byteLength(body),
          etag,
          ...rendering.headers,
        })
        .end(body);
    }
    stop({ outcome: "ok" });
    return true;
  }
}

function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(",").some((candidate) => {
    const tag = candidate.trim();
    return tag === "*" || tag === etag || tag === `W/${etag}`;
  });
}
