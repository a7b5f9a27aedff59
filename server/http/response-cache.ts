// Answers repeated GETs of cached queries from the bytes their first answer
// had, before Fastify routes them, as an HTTP cache with surrogate keys would.
// A response is kept by its request (method, URL and the headers that may vary
// it) together with what the cached read it was made from answered under: the
// tags its policy declared and their tokens. A later request with the same key
// is answered from those bytes only while the tags still have those tokens,
// checked as any hit is (the in-process tier's mirror after its read barrier,
// else the store): so no request that arrives after a write was acknowledged
// gets a response made before it, on any instance.
//
// Nothing here knows tRPC's wire format: the first request for a key goes
// through Fastify and tRPC (or a REST route), and its response is kept as it
// was sent. Only what can be proven to be one cached read's answer is kept: a
// GET (not no-store) whose 200 was made by exactly one cached read that didn't
// bypass the cache, and that tRPC (its responseMeta: a single query, no error)
// or the route (`config: { responseCache: true }`) says is that read's answer.
// Batches, writes, errors and streams never are. The ETag is a hash of the
// kept bytes; a matching If-None-Match gets 304.
import { createHash } from "node:crypto";
import type { IncomingMessage, OutgoingHttpHeader, ServerResponse } from "node:http";
import type { FastifyReply, FastifyRequest } from "fastify";
import { LRUCache } from "lru-cache";
import type { Answered, Cache } from "../cache/query-cache.ts";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import { bypassesCache, type ReadRecord, readRecordOf, recordReads } from "./request-context.ts";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The route's 200 answers are made from the one cached read it makes and nothing else: the response cache may keep them. */
    responseCache?: boolean;
  }
}

/** Request headers a kept response may differ by; one whose Vary names another header is not kept. */
const keyedHeaders = new Set(["host", "accept", "trpc-accept", "authorization"]);
/** Response headers a 304 repeats besides the ETag (RFC 9110, 15.4.5); a 200 has the content type and length too. */
const notModifiedHeaders = ["vary", "cache-control"] as const;

type HeaderValues = Readonly<Record<string, OutgoingHttpHeader>>;

/** A response as its miss sent it, and what its read answered under. */
export interface KeptResponse {
  /** The key it is kept under. */
  readonly storedAs: string;
  readonly read: Answered & { tokens: string };
  readonly body: Buffer;
  readonly etag: string;
  readonly headers: HeaderValues;
  /** A 304's headers. */
  readonly notModified: HeaderValues;
}

/** The response cache's key: method, URL, and the request headers a response may vary by. */
function keyOf(req: IncomingMessage): string {
  const { headers } = req;
  return `${req.method} ${req.url}\n${headers.host ?? ""}\n${headers.accept ?? ""}\n${headers["trpc-accept"] ?? ""}\n${headers.authorization ?? ""}`;
}

// About what the LRU's bookkeeping and the header objects cost besides the strings and the body.
const overheadBytes = 512;

/** Kept responses, least recently used first out, bounded in bytes (estimated from the lengths). */
export class KeptResponses {
  private readonly lru: LRUCache<string, KeptResponse>;

  constructor(maxBytes: number) {
    this.lru = new LRUCache<string, KeptResponse>({
      maxSize: maxBytes,
      sizeCalculation: (kept, key) =>
        key.length * 2 + kept.body.length + (kept.read.key.length + kept.read.tokens.length) * 2 + overheadBytes,
    });
  }

  get(key: string): KeptResponse | undefined {
    return this.lru.get(key);
  }

  /** Keeps `kept` for at most `ttlMs` (its entry's lifetime: no longer than a read would find it). */
  set(kept: KeptResponse, ttlMs: number): void {
    if (ttlMs > 0) this.lru.set(kept.storedAs, kept, { ttl: ttlMs });
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  get size(): number {
    return this.lru.size;
  }
}

export interface ResponseCacheOptions {
  /** The cache the kept responses' reads were answered by: it says whether their tokens are still current. */
  isCurrent: (tags: readonly string[], tokens: string) => Promise<boolean>;
  log: Logger;
  metrics: Metrics;
  /** The bound on kept responses (8 MiB). */
  maxBytes?: number;
}

export class ResponseCache {
  private readonly kept: KeptResponses;

  constructor(private readonly options: ResponseCacheOptions) {
    this.kept = new KeptResponses(options.maxBytes ?? 8 * 1024 * 1024);
  }

  /** A response cache over `cache`, or undefined if it can't tell what its reads answered under. */
  static over(cache: Cache, options: Omit<ResponseCacheOptions, "isCurrent">): ResponseCache | undefined {
    const { isCurrent, reporting } = cache;
    if (!isCurrent || !reporting) return undefined;
    return new ResponseCache({ ...options, isCurrent: (tags, tokens) => isCurrent.call(cache, tags, tokens) });
  }

  /**
   * The kept response this request may be answered with, decided without
   * waiting; undefined sends it on to Fastify (recording its reads, when its
   * answer may be kept).
   */
  match(req: IncomingMessage): KeptResponse | undefined {
    if (req.method !== "GET" || bypassesCache(req)) return undefined;
    const key = keyOf(req);
    const kept = this.kept.get(key);
    if (!kept) recordReads(req, key);
    return kept;
  }

  /** Sends the kept response (or a 304) and returns true if its tags' tokens are current; else returns false, for Fastify to answer. */
  async serve(req: IncomingMessage, res: ServerResponse, kept: KeptResponse): Promise<boolean> {
    const { metrics, log, isCurrent } = this.options;
    const { read } = kept;
    const stop = metrics.procedureDuration.startTimer({ procedure: read.procedure, type: "query" });
    let current = false;
    try {
      current = await isCurrent(read.tags, read.tokens);
    } catch {
      // The normal path answers, in its own words.
    }
    if (!current) {
      recordReads(req, kept.storedAs);
      return false;
    }
    metrics.cacheRequests.inc({ procedure: read.procedure, result: "hit" });
    log.debug({ key: read.key, tier: "response" }, "cache hit");
    if (matches(req.headers["if-none-match"], kept.etag)) res.writeHead(304, kept.notModified).end();
    else res.writeHead(200, kept.headers).end(kept.body);
    stop({ outcome: "ok" });
    return true;
  }

  /** Fastify's onSend hook: keeps a response that may be kept, and labels it with its ETag. */
  readonly onSend = (
    req: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
    done: (error: Error | null, payload?: unknown) => void,
  ): void => {
    const record = readRecordOf(req.raw);
    const read = record && this.keepable(req, reply, payload, record);
    if (!record || !read) {
      done(null, payload);
      return;
    }
    if (!(payload instanceof Response)) {
      this.keep(record.storeAs, read, reply, Buffer.isBuffer(payload) ? payload : Buffer.from(payload as string));
      done(null, payload);
      return;
    }
    // tRPC's answer: its bytes, with its status and headers, sent as Fastify would send the Response.
    payload.arrayBuffer().then(
      (bytes) => {
        reply.code(payload.status);
        for (const [name, value] of payload.headers) reply.header(name, value);
        const body = Buffer.from(bytes);
        this.keep(record.storeAs, read, reply, body);
        done(null, body);
      },
      (error: Error) => done(error),
    );
  };

  get bytes(): number {
    return this.kept.bytes;
  }

  /** The read a response was made from, if the response may be kept. */
  private keepable(
    req: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
    record: ReadRecord,
  ): (Answered & { tokens: string }) | undefined {
    const response = payload instanceof Response ? payload : undefined;
    if (!response && typeof payload !== "string" && !Buffer.isBuffer(payload)) return undefined; // a stream
    if ((response?.status ?? reply.statusCode) !== 200 || record.reads.length !== 1) return undefined;
    const [read] = record.reads;
    if (read?.tokens === undefined) return undefined; // it bypassed the cache
    const answers = record.answerOf === read.procedure || req.routeOptions.config?.responseCache === true;
    if (!answers) return undefined;
    const header = (name: string) => (response ? response.headers.get(name) : reply.getHeader(name));
    const vary = String(header("vary") ?? "")
      .split(",")
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean);
    if (!vary.every((name) => keyedHeaders.has(name))) return undefined;
    if (/(?:^|,)\s*(?:no-store|private)\s*(?:,|$)/i.test(String(header("cache-control") ?? ""))) return undefined;
    return { ...read, tokens: read.tokens };
  }

  private keep(storedAs: string, read: Answered & { tokens: string }, reply: FastifyReply, body: Buffer): void {
    const etag = `"${createHash("sha1").update(body).digest("base64url")}"`;
    reply.header("etag", etag);
    const notModified: Record<string, OutgoingHttpHeader> = { etag };
    for (const name of notModifiedHeaders) {
      const value = reply.getHeader(name);
      if (value !== undefined) notModified[name] = value;
    }
    const headers: Record<string, OutgoingHttpHeader> = { ...notModified, "content-length": body.length };
    const contentType = reply.getHeader("content-type");
    if (contentType !== undefined) headers["content-type"] = contentType;
    this.kept.set({ storedAs, read, body, etag, headers, notModified }, read.ttlMs);
  }
}

function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(",").some((candidate) => {
    const tag = candidate.trim();
    return tag === "*" || tag === etag || tag === `W/${etag}`;
  });
}
