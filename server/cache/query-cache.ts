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
//
// A read walks down the tiers once and back: the in-process tier when there
// is one (local-tier.ts, which owns its fetch race), the store, and on a miss
// the database; each tier keeps what it may on the way back. A read can also
// say what it answered under (`reporting`), so that a response made from it
// is answered again only while those tokens are current (`isCurrent`, checked
// as a hit is; server/http/response-cache.ts).
import { randomBytes } from "node:crypto";
import superjson from "superjson";
import { describeConnectionError } from "../../db/client.ts";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import { Breaker, CacheUnavailable } from "./breaker.ts";
import { entryKey, epochTag, metaKey, newToken, tagKey } from "./keys.ts";
import type { Copy, Found, LocalTier } from "./local-tier.ts";
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

/** A lookup's answer: the entry's key, the tags' current tokens (undefined: bypassed), and the entry's serialized value on a hit. */
export interface Lookup {
  key: string;
  tokens?: string;
  payload?: string;
}

/**
 * What one read answered under: a response made from its answer is what a
 * read would answer while the tags' tokens are still `tokens` (surrogate keys,
 * as HTTP caches use them).
 */
export interface Answered {
  procedure: string;
  /** The entry's key. */
  key: string;
  tags: readonly string[];
  /** The tags' tokens (the epoch's first) the answer was current under; undefined: it bypassed the cache. */
  tokens: string | undefined;
  /** How long the entry is kept (the policy's TTL). */
  ttlMs: number;
}

/** What cached procedures use; QueryCache is the implementation. */
export interface Cache {
  /**
   * The entry if current, else `load()` (stored under the tokens read before
   * it). `prior`, a lookup this request made just before (a tracing wrapper's
   * span), stands: its hit, its bypass, or its miss's tokens, without walking
   * the tiers again.
   */
  read<T>(request: ReadRequest, load: () => Promise<T>, prior?: Lookup): Promise<T>;
  /** Reads the tags' tokens and the entry through the tiers; a hit is an entry stored under exactly these tokens. Never loads or stores. */
  lookup(request: ReadRequest): Promise<Lookup>;
  /**
   * Gives each tag a new token, trying the store even while the breaker is
   * open; resolves false if the store could not be told (the breaker then
   * stays open until a recovery during which no bump failed).
   */
  invalidate(tags: readonly string[]): Promise<boolean>;
  /**
   * This cache, telling `sink` what each of its reads answered under (a
   * request's context hands it to its procedures, for the response cache).
   */
  reporting?(sink: (answered: Answered) => void): Cache;
  /**
   * Whether `tokens` are still the tags' current tokens for a read arriving
   * now, checked as a hit is (the in-process tier's mirror after its barrier,
   * else the store); false whenever reads bypass the cache.
   */
  isCurrent?(tags: readonly string[], tokens: string): Promise<boolean>;
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

/** What the store's tier answers: its entry, a miss, or (`loaded`) the value a miss loaded and stored. */
type Answer = Found & { loaded?: Loaded };

const flightKey = (key: string, tokens: string) => `${key}|${tokens}`;

export class QueryCache implements Cache {
  private readonly breaker: Breaker;
  private readonly flights = new SingleFlight();
  /** Lookups of one entry share a round trip, never one sent before they arrived (see fromStore). */
  private readonly lookups = new SingleFlight();
  /** The same for reads of tags' tokens alone (isCurrent without the in-process tier). */
  private readonly tokenReads = new SingleFlight();
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

  read<T>(request: ReadRequest, load: () => Promise<T>, prior?: Lookup): Promise<T> {
    return this.answer(request, load, prior, undefined);
  }

  reporting(sink: (answered: Answered) => void): Cache {
    const cache = this;
    return {
      read: (request, load, prior) => this.answer(request, load, prior, sink),
      lookup: (request) => this.lookup(request),
      invalidate: (tags) => this.invalidate(tags),
      reporting: (other) => this.reporting(other),
      isCurrent: (tags, tokens) => this.isCurrent(tags, tokens),
      get status() {
        return cache.status;
      },
      get tagFeed() {
        return cache.tagFeed;
      },
      ready: (timeoutMs) => this.ready(timeoutMs),
      close: () => this.close(),
    };
  }

  async isCurrent(tags: readonly string[], tokens: string): Promise<boolean> {
    if (this.bypassing()) return false;
    // As lookups: one round trip per wave, sent after the calls that share it arrived.
    const below = () => this.tokenReads.runFresh(tags.join("\n"), () => this.readTokens(tags));
    const { local } = this.options;
    return local ? local.isCurrent(tags, tokens, below) : (await below()) === tokens;
  }

  async lookup(request: ReadRequest): Promise<Lookup> {
    const key = entryKey(this.options.prefix, request.procedure, request.input);
    const found = await this.walk(key, request);
    if (!found) return { key };
    return found.payload === undefined
      ? { key, tokens: found.tokens }
      : { key, tokens: found.tokens, payload: found.payload };
  }

  /** A read: down the tiers and back once, else (bypassing) the database alone; `report` is told what it answered under. */
  private async answer<T>(
    request: ReadRequest,
    load: () => Promise<T>,
    prior: Lookup | undefined,
    report: ((answered: Answered) => void) | undefined,
  ): Promise<T> {
    const { log, metrics, prefix } = this.options;
    const key = prior?.key ?? entryKey(prefix, request.procedure, request.input);
    const answered = (tokens: string | undefined) => {
      const ttlMs = (request.ttlSeconds ?? this.options.ttlSeconds) * 1000;
      report?.({ procedure: request.procedure, key, tags: request.tags, tokens, ttlMs });
    };
    // A prior lookup (just made by this request) stands: its hit, its bypass, its miss's tokens.
    let found: Answer | Copy | undefined;
    if (!prior) found = await this.walk(key, request, load);
    else if (prior.tokens !== undefined) {
      found =
        prior.payload === undefined
          ? await this.loadUnder(key, request, prior.tokens, load)
          : { tokens: prior.tokens, payload: prior.payload };
    }
    if (found?.payload !== undefined) {
      answered(found.tokens);
      const loaded = "loaded" in found ? found.loaded : undefined;
      return loaded ? (loaded.value as T) : superjson.parse<T>(found.payload);
    }
    answered(undefined);
    metrics.cacheRequests.inc({ procedure: request.procedure, result: "miss" });
    log.debug({ key, bypass: true }, "cache miss");
    // Bypassing, nothing pins the data's version: share only a database read that starts after this
    // call arrived, so it sees every write acknowledged before (by this instance or any other).
    return this.flights.runFresh(`${key}|bypass`, () => this.loaded(request, load));
  }

  /**
   * Down the tiers and back: the in-process copy, else the store's entry, else
   * (given `load`) the value loaded and stored under the tokens read before
   * it. Undefined when reads bypass the cache or the store can't be read.
   */
  private async walk(
    key: string,
    request: ReadRequest,
    load?: () => Promise<unknown>,
  ): Promise<Answer | Copy | undefined> {
    if (this.bypassing() || request.mode === "no-store") return undefined;
    const { local, metrics, log } = this.options;
    const below = (keepable: boolean) => this.fromStore(key, request, keepable, load);
    if (!local) return below(false);
    const found = await local.get(key, request.tags, below);
    if (found && "tier" in found) {
      metrics.cacheRequests.inc({ procedure: request.procedure, result: "hit" });
      log.debug({ key, tier: "l1" }, "cache hit");
    }
    return found;
  }

  /** The store's tier: its entry, or a miss, loaded (given `load`) and stored. */
  private async fromStore(
    key: string,
    request: ReadRequest,
    keepable: boolean,
    load: (() => Promise<unknown>) | undefined,
  ): Promise<Answer | undefined> {
    const { log, metrics } = this.options;
    // Concurrent lookups of one entry share one round trip, and only one sent after they arrived:
    // a write acknowledged before a lookup arrived has bumped its tags before that round trip reads
    // them. Under load, a hot entry then costs a round trip per wave of requests, not per request.
    const found = await this.lookups.runFresh(key, () => this.fetchEntry(key, request, keepable));
    if (!found) return undefined;
    if (found.payload !== undefined) {
      metrics.cacheRequests.inc({ procedure: request.procedure, result: "hit" });
      log.debug({ key }, "cache hit");
      return found;
    }
    return load ? this.loadUnder(key, request, found.tokens, load) : found;
  }

  /** A miss: `load`, stored under `tokens` (read before it), shared with the calls that missed under the same ones. */
  private async loadUnder(
    key: string,
    request: ReadRequest,
    tokens: string,
    load: () => Promise<unknown>,
  ): Promise<Answer> {
    const { log, metrics } = this.options;
    const flight = flightKey(key, tokens);
    metrics.cacheRequests.inc({ procedure: request.procedure, result: "miss" });
    log.debug({ key, joined: this.flights.running(flight) !== undefined }, "cache miss");
    const ttlSeconds = request.ttlSeconds ?? this.options.ttlSeconds;
    const loadAndStore = async (): Promise<Loaded> => {
      const value = await this.loaded(request, load);
      const payload = superjson.stringify(value);
      await this.store(key, tokens, payload, ttlSeconds);
      return { value, payload };
    };
    // Keyed by the tags' tokens: a call that joins, or comes just after, takes a value read after the
    // same versions, as a hit on the stored entry would.
    const loaded = await this.flights.run(flight, loadAndStore, 500);
    return { tokens, payload: loaded.payload, ttlMs: ttlSeconds * 1000, loaded };
  }

  private async loaded<T>(request: ReadRequest, load: () => Promise<T>): Promise<T> {
    const value = await load();
    this.options.metrics.cacheLoads.inc({ procedure: request.procedure });
    return value;
  }

  /** Whether reads bypass the cache for now: the breaker is open, or a source suspended them. */
  private bypassing(): boolean {
    return this.suspensions.size > 0 || this.breaker.state === "down";
  }

  /**
   * Reads the tags' tokens and the entry in one round trip; a hit is an entry
   * stored under exactly these tokens. Undefined if the store can't be read.
   */
  private async fetchEntry(key: string, request: ReadRequest, keepable: boolean): Promise<Found | undefined> {
    const { prefix, store } = this.options;
    try {
      const tagKeys = [epochTag, ...request.tags].map((tag) => tagKey(prefix, tag));
      // Sent in the same pipeline: how long a copy of the entry may live in process memory.
      const ttl = keepable ? store.remainingTtlMs?.(key).catch(() => undefined) : undefined;
      const values = await this.breaker.run("read", () => store.mget([...tagKeys, key]));
      const entry = values.pop();
      const ttlSeconds = request.ttlSeconds ?? this.options.ttlSeconds;
      const tokens = (await this.currentTokens(tagKeys, values, ttlSeconds)).join(",");
      const payload = entry?.startsWith(`${tokens}\n`) ? entry.slice(tokens.length + 1) : undefined;
      return payload === undefined ? { tokens } : { tokens, payload, ttlMs: await ttl };
    } catch (error) {
      if (!(error instanceof CacheUnavailable)) throw error;
      return undefined;
    }
  }

  /** The tags' tokens as the store has them now (the epoch's first), joined; undefined if one has none or the store can't be read. */
  private async readTokens(tags: readonly string[]): Promise<string | undefined> {
    const { prefix, store } = this.options;
    try {
      const values = await this.breaker.run("read", () =>
        store.mget([epochTag, ...tags].map((tag) => tagKey(prefix, tag))),
      );
      return values.every((value) => value !== null) ? values.join(",") : undefined;
    } catch (error) {
      if (!(error instanceof CacheUnavailable)) throw error;
      return undefined;
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
