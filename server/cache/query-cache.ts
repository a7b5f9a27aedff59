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
// Every entry also depends on the epoch tag, which retires everything at once.
// While the store is unreachable, reads go to the database. A write's bump is
// attempted even then (it fails fast when the store is down): an
// acknowledged write whose bump did not reach the store is "lost", and the
// breaker reopens the cache only after a recovery step (the applier's replay
// of the change log, applier.ts) during which no bump was lost. So no bump
// lost before the cache is used again goes unreplayed.
//
// A read that bypasses the cache never joins a database read that began
// before it arrived (it shares the next one), so it sees every write
// acknowledged before it started, by any instance.
import { randomBytes } from "node:crypto";
import superjson from "superjson";
import { describeConnectionError } from "../../db/client.ts";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import { Breaker, CacheUnavailable } from "./breaker.ts";
import { entryKey, epochTag, metaKey, newToken, tagKey } from "./keys.ts";
import type { LocalTier } from "./local-tier.ts";
import { SingleFlight } from "./single-flight.ts";
import type { CacheStore } from "./store.ts";
import type { TagFeed } from "./tag-tracking.ts";

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
  /**
   * A miss whose entry is being loaded by another call under the same tokens
   * (so after the same writes): that load's serialized value, as a hit would
   * answer it, or undefined if the load fails; undefined at once when no such
   * load runs. Lets a miss be answered without running its procedure.
   */
  joinLoad(request: ReadRequest, lookup: Lookup): Promise<string | undefined> | undefined;
  /**
   * Gives each tag a new token, trying the store even while the breaker is
   * open; resolves false if the store could not be told (the breaker then
   * stays open until a recovery during which no bump failed).
   */
  invalidate(tags: readonly string[]): Promise<boolean>;
  readonly status: "up" | "down" | "memory";
  /** Which tags' versions changed, by any instance (Valkey, not a cluster); see tag-tracking.ts. */
  readonly tagFeed?: TagFeed;
  /** Resolves true once the cache is usable, false if it isn't within `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** The breaker's recovery step; `direct` store calls bypass the (still open) breaker. */
export type Recovery = (direct: DirectStore) => Promise<void>;

/**
 * Waits, for a write whose own bump could not reach the store, until the
 * change has reached it another way (the change applier); false if it didn't
 * within the hand-off's own bound.
 */
export type HandOff = () => Promise<boolean>;

/** Store calls for the change log, through the breaker or (during recovery) around it. */
export interface DirectStore {
  bump(tags: readonly string[]): Promise<void>;
  get(name: string): Promise<string | null>;
  set(name: string, value: string, ttlSeconds: number): Promise<void>;
}

export interface QueryCacheOptions {
  store: CacheStore;
  prefix: string;
  ttlSeconds: number;
  log: Logger;
  metrics: Metrics;
  /** Test seam: runs between a miss's database read and the store of its result. */
  beforeStore?: (key: string) => Promise<void>;
  /** Valkey's feed of tag-version changes (tag-tracking.ts), closed with the cache. */
  tracking?: TagFeed & { close(): Promise<void> };
  /** The in-process tier, asked before Valkey (local-tier.ts). */
  local?: LocalTier;
}

/** A load under a lookup's tokens: its value, and that value as an entry stores it. */
interface Loaded {
  value: unknown;
  payload: string;
}

const flightKey = (key: string, tokens: string) => `${key}|${tokens}`;

export class QueryCache implements Cache {
  private readonly breaker: Breaker;
  private readonly flights = new SingleFlight();
  /** Lookups of one entry share a round trip, never one sent before they arrived (see lookup). */
  private readonly lookups = new SingleFlight();
  /** Why reads must bypass the cache for now, besides the breaker (e.g. no applier pass seen). */
  private readonly suspensions = new Map<string, string>();
  private readonly tagTtlSeconds: number;
  private recovery: Recovery | undefined;
  private handOff: HandOff | undefined;
  private readonly statusListeners = new Set<(status: "up" | "down") => void>();
  /**
   * Which store holds these entries, for the change applier (one per store):
   * a shared store by its prefix, the in-process one by this process.
   */
  readonly storeId: string;

  constructor(private readonly options: QueryCacheOptions) {
    const { log, metrics, store } = options;
    this.storeId =
      store.kind === "memory" ? `memory:${randomBytes(9).toString("base64url")}` : `shared:${options.prefix}`;
    // A bumped tag's token outlives the entries cached under the old one; a token that expires anyway is
    // replaced by a new one, which only costs misses.
    this.tagTtlSeconds = Math.max(options.ttlSeconds * 10, 24 * 60 * 60);
    this.breaker = new Breaker({
      recover: () => (this.recovery ?? ((direct) => direct.bump([epochTag])))(this.directStore()),
      onError: (operation) => metrics.cacheErrors.inc({ operation }),
      onStateChange: (state, error) => {
        metrics.cacheUp.set(state === "up" ? 1 : 0);
        if (state === "down") {
          const why = describeConnectionError(store.lastConnectionError ?? error);
          log.warn({ reason: why }, "cache unavailable: serving from the database until it returns");
        } else log.info({ store: store.kind }, "cache available; the invalidations it missed are replayed");
        for (const listener of this.statusListeners) listener(state);
      },
    });
    // A reconnected store is not trusted until a recovery has replayed the change log from its own
    // record: it may be a server restarted empty, or restored from an older snapshot.
    store.onConnectionLost?.(() => this.breaker.trip(new Error("connection to the cache store lost")));
    this.breaker.start();
  }

  /** Which tags' versions changed, by any instance; undefined without Valkey (or on a cluster). */
  get tagFeed(): TagFeed | undefined {
    return this.options.tracking;
  }

  /** The store's own state; a suspension (no applier seen) is the applier's to report. */
  get status(): "up" | "down" | "memory" {
    if (this.breaker.state === "down") return "down";
    return this.options.store.kind === "memory" ? "memory" : "up";
  }

  /** Calls `listener` whenever the store becomes unavailable ("down") or available again ("up"). */
  onStatusChange(listener: (status: "up" | "down") => void): void {
    this.statusListeners.add(listener);
  }

  /** Reads bypass the cache until `resume(source)`. */
  suspend(source: string, reason: string): void {
    this.suspensions.set(source, reason);
  }

  /** Replaces the breaker's recovery step (the default bumps the epoch). */
  setRecovery(recovery: Recovery): void {
    this.recovery = recovery;
  }

  /** Sets what a write whose bump failed waits for before it answers (none: it answers at once). */
  setHandOff(handOff: HandOff): void {
    this.handOff = handOff;
  }

  /** Change-log bookkeeping in the store, through the breaker: throws CacheUnavailable when it is open. */
  get viaBreaker(): DirectStore {
    const direct = this.directStore();
    return {
      bump: (tags) => this.breaker.run("invalidate", () => direct.bump(tags)),
      get: (name) => this.breaker.run("read", () => direct.get(name)),
      set: (name, value, ttl) => this.breaker.run("store", () => direct.set(name, value, ttl)),
    };
  }

  resume(source: string): void {
    this.suspensions.delete(source);
  }

  /** Retires every entry at once (bumps the epoch); false if the store could not be told. */
  retireAll(): Promise<boolean> {
    return this.invalidate([epochTag]);
  }

  async ready(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (this.status === "down" || this.suspensions.size > 0) {
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
    const loaded = async () => {
      const value = await load();
      metrics.cacheLoads.inc({ procedure: request.procedure });
      return value;
    };
    // Bypassing, nothing pins the data's version: share only a database read that starts after this
    // call arrived, so it sees every write acknowledged before (by this instance or any other).
    if (tokens === undefined) return this.flights.runFresh(`${key}|bypass`, loaded);
    const loadedAndStored = async (): Promise<Loaded> => {
      const value = await loaded();
      const payload = superjson.stringify(value);
      const ttlSeconds = request.ttlSeconds ?? this.options.ttlSeconds;
      await this.store(key, tokens, payload, ttlSeconds);
      this.options.local?.offer(key, request.tags, tokens, payload, ttlSeconds * 1000);
      return { value, payload };
    };
    // Keyed by the tags' tokens: a call that joins, or comes just after, takes a value read after the
    // same versions, as a hit on the stored entry would.
    return (await this.flights.run(flightKey(key, tokens), loadedAndStored, 500)).value as T;
  }

  joinLoad(request: ReadRequest, { key, tokens }: Lookup): Promise<string | undefined> | undefined {
    if (tokens === undefined) return undefined;
    const flight = this.flights.running<Loaded>(flightKey(key, tokens));
    if (!flight) return undefined;
    this.options.metrics.cacheRequests.inc({ procedure: request.procedure, result: "miss" });
    this.options.log.debug({ key, joined: true }, "cache miss");
    return flight.then(
      ({ payload }) => payload,
      () => undefined,
    );
  }

  async lookup(request: ReadRequest): Promise<Lookup> {
    const { prefix, log, metrics } = this.options;
    const key = entryKey(prefix, request.procedure, request.input);
    if (this.suspensions.size > 0 || request.mode === "no-store" || this.breaker.state === "down") return { key };
    const local = await this.options.local?.find(key, request.tags);
    if (local) {
      metrics.cacheRequests.inc({ procedure: request.procedure, result: "hit" });
      log.debug({ key, tier: "l1" }, "cache hit");
      return { key, ...local };
    }
    // Concurrent lookups of one entry share one round trip, and only one sent after they arrived:
    // a write acknowledged before a lookup arrived has bumped its tags before that round trip reads
    // them. Under load, a hot entry then costs a round trip per wave of requests, not per request.
    const found = await this.lookups.runFresh(key, () => this.fetchEntry(key, request));
    if (found.payload !== undefined) {
      metrics.cacheRequests.inc({ procedure: request.procedure, result: "hit" });
      log.debug({ key }, "cache hit");
    }
    return found;
  }

  /** Reads the tags' tokens and the entry in one round trip; a hit is an entry stored under exactly these tokens. */
  private async fetchEntry(key: string, request: ReadRequest): Promise<Lookup> {
    const { prefix, store, local } = this.options;
    try {
      const tagKeys = [epochTag, ...request.tags].map((tag) => tagKey(prefix, tag));
      // Marked before the tokens are read, so an invalidation that overtakes them is not missed (local-tier.ts).
      const fetch = local?.beginFetch(request.tags);
      // Sent in the same pipeline: how long a copy of the entry may live in process memory.
      const ttl = fetch && store.remainingTtlMs?.(key).catch(() => undefined);
      const values = await this.breaker.run("read", () => store.mget([...tagKeys, key]));
      const entry = values.pop();
      const ttlSeconds = request.ttlSeconds ?? this.options.ttlSeconds;
      const tokens = (await this.currentTokens(tagKeys, values, ttlSeconds)).join(",");
      const payload = entry?.startsWith(`${tokens}\n`) ? entry.slice(tokens.length + 1) : undefined;
      if (fetch) local?.completeFetch(fetch, key, tokens, payload, await ttl);
      return payload === undefined ? { key, tokens } : { key, tokens, payload };
    } catch (error) {
      if (!(error instanceof CacheUnavailable)) throw error;
      return { key };
    }
  }

  async invalidate(tags: readonly string[]): Promise<boolean> {
    try {
      // Tried even while the breaker is open: a write acknowledged during a recovery must not depend on it.
      await this.breaker.attempt("invalidate", () => this.directStore().bump(tags));
      return true;
    } catch (error) {
      // The breaker is open now; its recovery replays (or retires) what this missed before the cache is used again.
      if (!(error instanceof CacheUnavailable)) throw error;
      // Other instances may still read the store: the write answers only once an applier that reaches it has
      // applied the change, so no read that starts after the answer, anywhere, finds the old entry.
      await this.handOff?.();
      return false;
    }
  }

  private directStore(): DirectStore {
    const { prefix, store, log, metrics } = this.options;
    return {
      bump: async (tags) => {
        if (tags.length === 0) return;
        metrics.cacheInvalidations.inc(tags.length);
        if (tags.includes(epochTag)) metrics.cacheRetirements.inc();
        log.debug({ tags }, "cache invalidate");
        await store.mset(
          tags.map((tag) => ({ key: tagKey(prefix, tag), value: newToken(), ttlSeconds: this.tagTtlSeconds })),
        );
      },
      get: async (name) => (await store.mget([metaKey(prefix, name)]))[0] ?? null,
      set: (name, value, ttlSeconds) => store.mset([{ key: metaKey(prefix, name), value, ttlSeconds }]),
    };
  }

  async close(): Promise<void> {
    this.breaker.stop();
    await this.options.tracking?.close();
    await this.options.store.close();
  }

  /**
   * The tags' tokens; a tag without one (new, expired or evicted) gets a fresh token, so no old entry
   * matches it. Created by a read, it lives as long as that read's entry: a read of something that
   * doesn't exist leaves nothing behind that outlives its entry. That is safe because tokens are never
   * reused: whenever a tag key expires, the next read or bump gives it a token no entry was ever
   * stored under, so an entry can never match a tag that expired and came back (it costs a miss).
   * The epoch tag (the first) is the exception: one key that every entry depends on, it gets the long
   * life, or its expiry would retire every entry at once.
   */
  private currentTokens(tagKeys: string[], values: (string | null)[], ttlSeconds: number): Promise<string[]> {
    return Promise.all(
      values.map(
        (value, i) =>
          value ??
          this.breaker.run("read", () =>
            this.options.store.setIfAbsent({
              key: tagKeys[i] as string,
              value: newToken(),
              ttlSeconds: i === 0 ? this.tagTtlSeconds : ttlSeconds,
            }),
          ),
      ),
    );
  }

  private async store(key: string, tokens: string, payload: string, ttlSeconds: number): Promise<void> {
    await this.options.beforeStore?.(key);
    try {
      await this.breaker.run("store", () =>
        this.options.store.mset([{ key, value: `${tokens}\n${payload}`, ttlSeconds }]),
      );
      this.options.log.debug({ key, ttlSeconds }, "cache store");
    } catch (error) {
      if (!(error instanceof CacheUnavailable)) throw error;
    }
  }
}
