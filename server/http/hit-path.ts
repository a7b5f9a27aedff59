// Answers hits of cached GET queries as soon as a request arrives, before
// Fastify routes it, from the procedures' declared cache policies: the same
// input parse, the same authorization check, the same entry (checked by its
// tags' tokens), rendered as the bytes the normal path sends, with an ETag for
// conditional requests. Anything else goes on to Fastify; a miss carries what
// was found (its parsed input and its lookup), so it neither parses nor looks
// up twice. Only the request's Host is checked here first (the one check
// Fastify makes on every request before a route); writes never come here.
import type { IncomingMessage, ServerResponse } from "node:http";
import superjson from "superjson";
import type { DeclaredPolicy, Prefetched } from "../cache/policy.ts";
import type { Context } from "../trpc.ts";
import { bypassesCache, contextFor } from "./request-context.ts";

export interface Rendering {
  /** The response body, from the entry's serialized (superjson) value. */
  body: (payload: string) => string;
  contentType: string;
  headers?: Record<string, string>;
}

/** A GET route whose hits this path may answer: its procedure, and how it reads the input from the query. */
export interface HitRoute {
  policy: DeclaredPolicy;
  /** The raw input from the query parameters; undefined input is valid, `invalid` leaves the request to the route. */
  input(query: Record<string, string>): unknown | typeof invalid;
  rendering: Rendering;
}

export const invalid = Symbol("invalid");

const trpcRendering: Rendering = {
  contentType: "application/json",
  body: (payload) => `{"result":{"data":${payload}}}`,
  headers: { vary: "trpc-accept, accept" },
};

const found = new WeakMap<IncomingMessage, Prefetched>();

/** What the hit path found for this request, if it was a miss. */
export function prefetchedFor(req: IncomingMessage): Prefetched | undefined {
  return found.get(req);
}

/** The tags' tokens name an entry's version: any write it depends on changes them. */
const etagOf = (tokens: string) => `"${tokens.replaceAll(",", "/")}"`;

/** A miss's ETag: its entry is stored under the tokens it looked up, so the hit that follows has the same one. */
export function missEtag(req: IncomingMessage): string | undefined {
  const tokens = found.get(req)?.lookup.tokens;
  return tokens === undefined ? undefined : etagOf(tokens);
}

export class HitPath {
  constructor(
    private readonly context: Context,
    private readonly routes: ReadonlyMap<string, HitRoute>,
    private readonly policies: ReadonlyMap<string, DeclaredPolicy>,
    private readonly hostAllowed: (host: string | undefined) => boolean,
  ) {}

  /** The route this request may be a hit of, or undefined: decided without waiting. */
  match(req: IncomingMessage): { route: HitRoute; query: Record<string, string> } | undefined {
    if (req.method !== "GET" || !this.hostAllowed(req.headers.host) || bypassesCache(req)) return undefined;
    const target = req.url ?? "/";
    const mark = target.indexOf("?");
    const path = mark === -1 ? target : target.slice(0, mark);
    // As FastAPI, of repeated parameters the last one counts.
    const query = mark === -1 ? {} : Object.fromEntries(new URLSearchParams(target.slice(mark + 1)));
    const route = this.routes.get(path) ?? this.trpcRoute(path, query);
    return route && { route, query };
  }

  /** Sends the cached response and returns true; or returns false and leaves the request to Fastify. */
  async serve(
    req: IncomingMessage,
    res: ServerResponse,
    { route, query }: { route: HitRoute; query: Record<string, string> },
  ): Promise<boolean> {
    const { policy, rendering } = route;
    const raw = route.input(query);
    if (raw === invalid) return false; // the route says what is wrong
    const ctx = contextFor(this.context, req);
    try {
      policy.authorize?.(ctx);
    } catch {
      return false; // the procedure refuses it, in its own words
    }
    const parsed = policy.parse(raw);
    if (!parsed) return false; // the procedure reports what is wrong
    const stop = ctx.metrics.procedureDuration.startTimer({ procedure: policy.procedure, type: "query" });
    const answerBy = Date.now() + ctx.databaseTimeoutMs;
    const request = policy.request(parsed.input, ctx);
    let lookup: Awaited<ReturnType<Context["cache"]["lookup"]>>;
    try {
      lookup = await ctx.cache.lookup(request);
    } catch {
      return false;
    }
    const { tokens } = lookup;
    // A miss whose entry another request is loading takes that load's answer here, as a hit, rather
    // than running the procedure only to join the same load: after each write, that was every
    // request to arrive while its entry was reloaded.
    // A load that outlasts the request's budget leaves it to the procedure, which answers in its own shape
    // that the database is unavailable.
    const payload = lookup.payload ?? (await before(ctx.cache.joinLoad(request, lookup), answerBy));
    if (payload === undefined || tokens === undefined) {
      found.set(req, { procedure: policy.procedure, raw, input: parsed.input, lookup, answerBy });
      return false;
    }
    const etag = etagOf(tokens);
    if (matches(req.headers["if-none-match"], etag)) res.writeHead(304, { etag, ...rendering.headers }).end();
    else {
      const body = rendering.body(payload);
      res
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

  /** A single (not batched) tRPC query of a cached procedure. */
  private trpcRoute(path: string, query: Record<string, string>): HitRoute | undefined {
    if (!path.startsWith("/trpc/") || query.batch !== undefined) return undefined;
    const policy = this.policies.get(path.slice("/trpc/".length));
    if (!policy) return undefined;
    return {
      policy,
      rendering: trpcRendering,
      input: ({ input }) => trpcInput(input),
    };
  }
}

/** A tRPC GET's `input` parameter as tRPC reads it (JSON, then superjson); `invalid` leaves the request to tRPC, which says what is wrong. */
export function trpcInput(input: string | undefined): unknown | typeof invalid {
  if (input === undefined) return undefined;
  try {
    return superjson.deserialize(JSON.parse(input));
  } catch {
    return invalid;
  }
}

/** What `work` resolves to, or undefined if it hasn't by `deadline` (epoch ms). */
async function before<T>(work: Promise<T | undefined> | undefined, deadline: number): Promise<T | undefined> {
  if (!work) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(",").some((candidate) => {
    const tag = candidate.trim();
    return tag === "*" || tag === etag || tag === `W/${etag}`;
  });
}
