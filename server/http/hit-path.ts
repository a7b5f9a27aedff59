// Answers hits of cached GET queries as soon as a request arrives, before
// Fastify routes it, from the procedures' declared cache policies: the same
// input parse, the same authorization check, the same entry (checked by its
// tags' tokens), rendered as the bytes the normal path sends, with an ETag for
// conditional requests. Anything else goes on to Fastify; a miss carries what
// was found (its parsed input and its lookup), so it neither parses nor looks
// up twice. Only the request's Host is checked here first (the one check
// Fastify makes on every request before a route); writes never come here.
//
// Parsing a URL's input is pure, so what a URL reads as is kept (an LRU bounded
// in bytes, by the URL as sent), with its last response: a hot URL is parsed once and
// rendered once per version of its entry (its tags' tokens), not per request.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { LRUCache } from "lru-cache";
import superjson from "superjson";
import type { DeclaredPolicy, Prefetched } from "../cache/policy.ts";
import type { ReadRequest } from "../cache/query-cache.ts";
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

/** What one URL of a cached route reads as, and the last response it was answered with. */
export interface PreparedHit {
  /** The URL as sent: the memo's key. */
  target: string;
  route: HitRoute;
  /** Undefined when the URL's input is not valid: the route says what is wrong. */
  read?: { raw: unknown; input: unknown; request: ReadRequest };
  last?: Rendered;
}

/** A response for one version of an entry: the same tokens and payload give the same bytes. */
interface Rendered {
  tokens: string;
  payload: string;
  body: string;
  headers: OutgoingHttpHeaders;
  notModified: OutgoingHttpHeaders;
}

// Hot URLs are few; a client sending ever new (or long) ones only churns this bound. In bytes, estimated
// from string lengths: the URL twice (key and target), the last body, and the rest.
const preparedBytes = 8 * 1024 * 1024;
const sizeOf = ({ target, last }: PreparedHit) => (2 * target.length + (last?.body.length ?? 0)) * 2 + 1024;

export class HitPath {
  private readonly prepared = new LRUCache<string, PreparedHit>({ maxSize: preparedBytes, sizeCalculation: sizeOf });

  constructor(
    private readonly context: Context,
    private readonly routes: ReadonlyMap<string, HitRoute>,
    private readonly policies: ReadonlyMap<string, DeclaredPolicy>,
    private readonly hostAllowed: (host: string | undefined) => boolean,
  ) {}

  /** The cached route this request may be a hit of, as its URL reads, or undefined: decided without waiting. */
  match(req: IncomingMessage): PreparedHit | undefined {
    if (req.method !== "GET" || !this.hostAllowed(req.headers.host) || bypassesCache(req)) return undefined;
    const target = req.url ?? "/";
    const known = this.prepared.get(target);
    if (known) return known;
    let prepared: PreparedHit | undefined;
    try {
      prepared = this.prepare(target);
    } catch {
      return undefined; // an input that makes a parser throw (say, nested past the stack): Fastify answers it
    }
    if (prepared) this.prepared.set(target, prepared);
    return prepared;
  }

  /** Sends the cached response and returns true; or returns false and leaves the request to Fastify. */
  async serve(req: IncomingMessage, res: ServerResponse, prepared: PreparedHit): Promise<boolean> {
    const { route, read } = prepared;
    if (!read) return false; // the route (or the procedure) says what is wrong
    const { policy } = route;
    const ctx = contextFor(this.context, req);
    try {
      policy.authorize?.(ctx);
    } catch {
      return false; // the procedure refuses it, in its own words
    }
    const stop = ctx.metrics.procedureDuration.startTimer({ procedure: policy.procedure, type: "query" });
    const answerBy = Date.now() + ctx.databaseTimeoutMs;
    let lookup: Awaited<ReturnType<Context["cache"]["lookup"]>>;
    try {
      lookup = await ctx.cache.lookup(read.request);
    } catch {
      return false;
    }
    const { tokens } = lookup;
    // A miss whose entry another request is loading takes that load's answer here, as a hit, rather
    // than running the procedure only to join the same load: after each write, that was every
    // request to arrive while its entry was reloaded.
    // A load that outlasts the request's budget leaves it to the procedure, which answers in its own shape
    // that the database is unavailable.
    const payload = lookup.payload ?? (await before(ctx.cache.joinLoad(read.request, lookup), answerBy));
    if (payload === undefined || tokens === undefined) {
      found.set(req, { procedure: policy.procedure, raw: read.raw, input: read.input, lookup, answerBy });
      return false;
    }
    let rendered = prepared.last;
    if (rendered?.tokens !== tokens || rendered.payload !== payload) {
      rendered = prepared.last = render(route.rendering, tokens, payload);
      this.prepared.set(prepared.target, prepared); // its size changed with the body
    }
    const etag = rendered.headers.etag as string;
    if (matches(req.headers["if-none-match"], etag)) res.writeHead(304, rendered.notModified).end();
    else res.writeHead(200, rendered.headers).end(rendered.body);
    stop({ outcome: "ok" });
    return true;
  }

  /** What a URL reads as, if it names a cached route. */
  private prepare(target: string): PreparedHit | undefined {
    const mark = target.indexOf("?");
    const path = mark === -1 ? target : target.slice(0, mark);
    // As FastAPI, of repeated parameters the last one counts.
    const query = mark === -1 ? {} : Object.fromEntries(new URLSearchParams(target.slice(mark + 1)));
    const route = this.routes.get(path) ?? this.trpcRoute(path, query);
    if (!route) return undefined;
    const raw = route.input(query);
    const parsed = raw === invalid ? undefined : route.policy.parse(raw);
    if (!parsed) return { target, route };
    // The hit path never serves a no-store request, so the shared context's cache mode is every hit's.
    const request = route.policy.request(parsed.input, this.context);
    return { target, route, read: { raw, input: parsed.input, request } };
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

function render(rendering: Rendering, tokens: string, payload: string): Rendered {
  const etag = etagOf(tokens);
  const body = rendering.body(payload);
  return {
    tokens,
    payload,
    body,
    headers: {
      "content-type": rendering.contentType,
      "content-length": Buffer.byteLength(body),
      etag,
      ...rendering.headers,
    },
    notModified: { etag, ...rendering.headers },
  };
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
