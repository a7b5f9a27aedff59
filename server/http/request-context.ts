import type { IncomingMessage } from "node:http";
import type { Answered } from "../cache/query-cache.ts";
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

/**
 * What a request whose answer the response cache may keep learned on its way
 * through Fastify and tRPC: what its cached reads answered under, and whether
 * tRPC says its response is one query's answer.
 */
export interface ReadRecord {
  /** The response cache's key for the request. */
  readonly storeAs: string;
  readonly reads: Answered[];
  /** The procedure tRPC says the response answers alone (a single query that succeeded). */
  answerOf?: string;
}

const records = new WeakMap<IncomingMessage, ReadRecord>();
const recordsByContext = new WeakMap<Context, ReadRecord>();

/** From now on, the cached reads made for `req` are recorded (contextFor hands its procedures a cache that tells). */
export function recordReads(req: IncomingMessage, storeAs: string): ReadRecord {
  const record: ReadRecord = { storeAs, reads: [] };
  records.set(req, record);
  return record;
}

export function readRecordOf(req: IncomingMessage): ReadRecord | undefined {
  return records.get(req);
}

/** tRPC's word (its responseMeta) that the response to the request `ctx` was made for answers `procedure` alone. */
export function answersAlone(ctx: Context, procedure: string): void {
  const record = recordsByContext.get(ctx);
  if (record) record.answerOf = procedure;
}

/** The request's context: the shared one, or a copy with what this request says (credentials, no-store, a record of its reads). */
export function contextFor(base: Context, req: IncomingMessage): Context {
  const { authorization } = req.headers;
  const bypass = bypassesCache(req);
  const record = records.get(req);
  if (!authorization && !bypass && !record) return base;
  const ctx: Context = { ...base, authorization, cacheMode: bypass ? "no-store" : base.cacheMode };
  if (record && base.cache.reporting) {
    ctx.cache = base.cache.reporting((answered) => record.reads.push(answered));
    recordsByContext.set(ctx, record);
  }
  return ctx;
}
