// The cache's whole mechanism; procedures only declare tags (middleware.ts).
//
// Every entry depends on tags, and every tag has a version token in the store.
// A read fetches the tokens *before* it reads the database, and stores its
// result together with them; a hit requires the stored tokens to equal the
// current ones. A write, after it commits and before it is acknowledged, gives
// each affected tag a new token. So a read that raced the write and stored the
// old value stored it under the old tokens, and no later read accepts it: no
// read that starts after the acknowledgement can see older data.
//
// Every entry also depends on the epoch tag. While the store is unreachable,
// reads go to the database and invalidations are lost; the breaker reopens the
// cache only after bumping the epoch, retiring everything cached before.
import superjson from "superjson";
import { describeConnectionError } from "../../db/client.ts";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import { Breaker, CacheUnavailable } from "./breaker.ts";
import { entryKey, epochTag, newToken, tagKey } from "./keys.ts";
import { SingleFlight } from "./single-flight.ts";
import type { CacheStore } from "./store.ts";

export type CacheMode = "default" | "no-store";

export interface ReadRequest {
  /** The procedure's path, e.g. "orders.count". */
  procedure: string;
  /** The validated input; equal inputs (whatever their key order) share an entry. */
  input: unknown;
  /** What the result depends on; a write that invalidates one of them retires the entry. */
  tags: readonly string[];
  ttlSeconds?: number;
  /** "no-store": read the database and leave the cache alone. */
  mode?: CacheMode;
}

/** One cache round trip's answer: the entry's key, the tags' current tokens (undefined: bypassed), and the entry's serialized value on a hit. */
export interface Lookup {
  key: string;
  tokens?: string;
  payload?: string;
}

/** What cached procedures use; QueryCache is the implementation. */
export interface Cache {
  /** The entry if current, else `load()` (stored under the tokens read before it); `prior` is this request's own earlier lookup, so a miss isn't looked up twice. */
  read<T>(request: ReadRequest, load: () => Promise<T>, prior?: Lookup): Promise<T>;
  /** Reads the tags' tokens and the entry; a hit is an entry stored under exactly these tokens. Never loads or stores. */
  lookup(request: ReadRequest): Promise<Lookup>;
  invalidate(tags: readonly string[]): Promise<void>;
  readonly status: "up" | "down" | "memory";
  /** Resolves true once the cache is usable, false if it isn't within `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

export interface QueryCacheOptions {
  store: CacheStore;
  prefix: string;
  ttlSeconds: number;
  log: Logger;
  metrics: Metrics;
  /** Test seam: runs between a miss's database read and the store of its result. */
  beforeStore?: (key: string) => Promise<void>;
}

export class QueryCache implements Cache {
  private readonly breaker: Breaker;
  private readonly flights = new SingleFlight();
  /** Counts this process's invalidations, so no read joins a database read that began before one. */
  private generation = 0;
  /** Why reads must bypass the cache for now, besides the breaker (e.g. lost change notifications). */
  private readonly suspensions = new Map<string, string>();
  private readonly tagTtlSeconds: number;

  constructor(private readonly options: QueryCacheOptions) {
    const { log, metrics, store } = options;
    // Tag tokens outlive entries; a token that expires anyway is replaced by a new one, which only costs misses.
    this.tagTtlSeconds = Math.max(options.ttlSeconds * 10, 24 * 60 * 60);
    this.breaker = new Breaker({
      recover: () =>
        store.mset([{ key: tagKey(options.prefix, epochTag), value: newToken(), ttlSeconds: this.tagTtlSeconds }]),
      onError: (operation) => metrics.cacheErrors.inc({ operation }),
      onStateChange: (state, error) => {
        metrics.cacheUp.set(state === "up" ? 1 : 0);
        if (state === "down") {
          const why = describeConnectionError(store.lastConnectionError ?? error);
          log.warn({ reason: why }, "cache unavailable: serving from the database until it returns");
        } else log.info({ store: store.kind }, "cache available; entries cached before now are retired");
      },
    });
    this.breaker.start();
  }

  get status(): "up" | "down" | "memory" {
    if (this.breaker.state === "down" || this.suspensions.size > 0) return "down";
    return this.options.store.kind === "memory" ? "memory" : "up";
  }

  /** Reads bypass the cache until `resume(source)`. */
  suspend(source: string, reason: string): void {
    this.generation++;
    this.suspensions.set(source, reason);
  }

  resume(source: string): void {
    this.suspensions.delete(source);
  }

  /** Retires every entry at once (bumps the epoch); when the store is down, its recovery does it. */
  async retireAll(): Promise<void> {
    await this.invalidate([epochTag]);
  }

  async ready(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (this.status === "down") {
      if (performance.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return true;
  }

  async read<T>(request: ReadRequest, load: () => Promise<T>, prior?: Lookup): Promise<T> {
    const { log, metrics } = this.options;
    const { key, tokens, payload } = prior ?? (await this.lookup(request));
    if (payload !== undefined) return superjson.parse<T>(payload);
    metrics.cacheRequests.inc({ procedure: request.procedure, result: "miss" });
    log.debug({ key, bypass: tokens === undefined }, "cache miss");
    // Keyed by the tags' tokens (and this process's invalidations): a call that joins, or comes just
    // after, takes a value read after the same versions, as a hit on the stored entry would.
    return this.flights.run(
      `${key}|${tokens ?? "bypass"}|${this.generation}`,
      async () => {
        const value = await load();
        metrics.cacheLoads.inc({ procedure: request.procedure });
        if (tokens !== undefined) await this.store(key, tokens, value, request.ttlSeconds ?? this.options.ttlSeconds);
        return value;
      },
      tokens === undefined ? 0 : 500,
    );
  }

  /** The current entry's serialized (superjson) value, or undefined: never loads or stores. */
  async peek(request: ReadRequest): Promise<string | undefined> {
    return (await this.lookup(request)).payload;
  }

  async lookup(request: ReadRequest): Promise<Lookup> {
    const { prefix, store, log, metrics } = this.options;
    const key = entryKey(prefix, request.procedure, request.input);
    if (this.suspensions.size > 0 || request.mode === "no-store" || this.breaker.state === "down") return { key };
    try {
      const tagKeys = [epochTag, ...request.tags].map((tag) => tagKey(prefix, tag));
      const values = await this.breaker.run("read", () => store.mget([...tagKeys, key]));
      const entry = values.pop();
      const tokens = (await this.currentTokens(tagKeys, values)).join(",");
      if (entry?.startsWith(`${tokens}\n`)) {
        metrics.cacheRequests.inc({ procedure: request.procedure, result: "hit" });
        log.debug({ key }, "cache hit");
        return { key, tokens, payload: entry.slice(tokens.length + 1) };
      }
      return { key, tokens };
    } catch (error) {
      if (!(error instanceof CacheUnavailable)) throw error;
      return { key };
    }
  }

  async invalidate(tags: readonly string[]): Promise<void> {
    const { prefix, store, log, metrics } = this.options;
    this.generation++;
    metrics.cacheInvalidations.inc(tags.length);
    log.debug({ tags }, "cache invalidate");
    const entries = tags.map((tag) => ({
      key: tagKey(prefix, tag),
      value: newToken(),
      ttlSeconds: this.tagTtlSeconds,
    }));
    try {
      await this.breaker.run("invalidate", () => store.mset(entries));
    } catch (error) {
      // The breaker is open now; it bumps the epoch before the cache is used again.
      if (!(error instanceof CacheUnavailable)) throw error;
    }
  }

  async close(): Promise<void> {
    this.breaker.stop();
    await this.options.store.close();
  }

  /** The tags' tokens; a tag without one (new, expired or evicted) gets a fresh token, so no old entry matches it. */
  private currentTokens(tagKeys: string[], values: (string | null)[]): Promise<string[]> {
    return Promise.all(
      values.map(
        (value, i) =>
          value ??
          this.breaker.run("read", () =>
            this.options.store.setIfAbsent({
              key: tagKeys[i] as string,
              value: newToken(),
              ttlSeconds: this.tagTtlSeconds,
            }),
          ),
      ),
    );
  }

  private async store(key: string, tokens: string, value: unknown, ttlSeconds: number): Promise<void> {
    await this.options.beforeStore?.(key);
    try {
      await this.breaker.run("store", () =>
        this.options.store.mset([{ key, value: `${tokens}\n${superjson.stringify(value)}`, ttlSeconds }]),
      );
      this.options.log.debug({ key, ttlSeconds }, "cache store");
    } catch (error) {
      if (!(error instanceof CacheUnavailable)) throw error;
    }
  }
}
