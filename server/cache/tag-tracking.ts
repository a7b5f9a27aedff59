// This instance's feed of tag-version changes, made by any instance or by the
// applier: Valkey's server-assisted client-side caching. One connection asks
// for `CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX <tag keys>` and
// then subscribes to `__redis__:invalidate` (iovalkey speaks RESP2, where
// invalidations can only arrive as Pub/Sub messages on a redirect target), so
// every write of a tag key reaches it as a message naming the key.
//
// Whatever breaks that connection loses invalidations: the feed says "all"
// (treat everything as changed) when it is lost, and again when it is back,
// since nothing says what changed in between.
//
// `barrier()` is the read barrier of the in-process tier (local-tier.ts): it
// resolves true once the reply to a PING sent on this connection *after* the
// call arrived has come back (one PING at a time, shared by the calls that
// arrived while the previous one was out). Valkey appends a write's invalidation to this
// connection's output before that write's reply leaves the server, and the
// PING's reply after everything already there, so by then every invalidation
// of a write acknowledged before the call has been delivered to the listeners
// (README, "The in-process tier", states the argument and its assumptions).
import { Valkey } from "iovalkey";
import type { Logger } from "../logger.ts";
import { epochTag, tagKey } from "./keys.ts";

/** Tags whose versions changed, or "all": changes may have been lost, treat everything as changed. */
export type TagChange = readonly string[] | "all";

/** What a consumer of the feed sees (the in-process tier, live subscriptions). */
export interface TagFeed {
  /** Calls `listener` for every change, synchronously as it arrives; returns the unsubscribe. */
  onTagsChanged(listener: (change: TagChange) => void): () => void;
  /** Whether changes are being delivered now (when false, some may be missed: wait for the next "all"). */
  readonly live: boolean;
}

export interface TagTrackingOptions {
  url: string;
  /** CACHE_PREFIX: the tracked keys are its tag keys. */
  prefix: string;
  log: Logger;
  /** Longest wait for a barrier (200 ms): past it the read asks Valkey instead. */
  barrierTimeoutMs?: number;
  /** A PING unanswered this long (ten barrier timeouts) counts as a lost connection, which is made again. */
  hungAfterMs?: number;
  connectTimeoutMs?: number;
  /** The run_id of the server the cache's store talks to; tracking another server would miss its writes. */
  storeRunId?: () => Promise<string | undefined>;
  /** Called when the feed goes live or is lost (metrics). */
  onStateChange?: (live: boolean, reason: string) => void;
}

export const invalidationChannel = "__redis__:invalidate";
/** The name the connection shows in CLIENT LIST. */
export const trackingConnectionName = "dellstore-orders-invalidations";

const backoff = (attempt: number) => Math.min(50 * 2 ** attempt, 2000);

interface Batch {
  promise: Promise<boolean>;
  /** Settles the barrier once (later calls do nothing) and stops its timer. */
  settle: (passed: boolean) => void;
}

export class TagTracking implements TagFeed {
  private readonly connection: Valkey;
  private readonly keyPrefix: string;
  private readonly listeners = new Set<(change: TagChange) => void>();
  private current = false;
  /** Increases whenever the feed goes live or is lost: a barrier passes only if it stayed the same. */
  private session = 0;
  /** The barrier whose PING is yet to be sent, shared by the calls that arrive meanwhile. */
  private queued: Batch | undefined;
  /** Whether a PING is out (or about to be sent). */
  private pinging = false;
  private closed = false;
  private runId: string | undefined;
  private id: number | undefined;
  /** Failed starts since the last one that worked, and the reason last reported. */
  private failures = 0;
  private reported: string | undefined;

  constructor(private readonly options: TagTrackingOptions) {
    this.keyPrefix = tagKey(options.prefix, "");
    this.connection = new Valkey(options.url, {
      connectionName: trackingConnectionName,
      connectTimeout: options.connectTimeoutMs ?? 1000,
      // No command here may hang for good: a start that gets no answer is tried again from a new connection.
      commandTimeout: options.hungAfterMs ?? (options.barrierTimeoutMs ?? 200) * 10,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // Re-subscribing alone is not enough: tracking must be turned on again first (begin()).
      autoResubscribe: false,
      retryStrategy: backoff,
      lazyConnect: true,
    });
    this.connection.on("error", () => {}); // a lost connection shows as "close"; its cause is the store's to report
    this.connection.on("ready", () => void this.begin());
    this.connection.on("close", () => this.lose("connection to Valkey lost"));
    this.connection.on("messageBuffer", (channel: Buffer, message: Buffer | Buffer[] | null) => {
      if (this.current && channel.toString() === invalidationChannel) this.deliver(message);
    });
  }

  private get timeoutMs(): number {
    return this.options.barrierTimeoutMs ?? 200;
  }

  get live(): boolean {
    return this.current;
  }

  /** The connection's CLIENT ID while live (for CLIENT KILL, CLIENT LIST). */
  get clientId(): number | undefined {
    return this.current ? this.id : undefined;
  }

  start(): void {
    this.connection.connect().catch(() => {}); // retried by retryStrategy
  }

  onTagsChanged(listener: (change: TagChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Resolves true once every invalidation Valkey emitted before this call's
   * PING was processed has been delivered; false if the feed is not live or was
   * lost meanwhile. One PING at a time: the calls that arrive while one is out
   * share the next, sent when it returns (after all of them arrived); when none
   * is out, the calls of one event-loop turn share one sent in the next turn.
   */
  barrier(): Promise<boolean> {
    if (!this.current) return Promise.resolve(false);
    if (this.queued) return this.queued.promise;
    let resolve: (passed: boolean) => void = () => {};
    const promise = new Promise<boolean>((r) => {
      resolve = r;
    });
    // A slow answer only sends the reads to Valkey; the feed stays (its order still holds).
    const timer = setTimeout(() => resolve(false), this.timeoutMs);
    const settle = (passed: boolean) => {
      clearTimeout(timer);
      resolve(passed);
    };
    this.queued = { promise, settle };
    if (!this.pinging) {
      this.pinging = true;
      setImmediate(() => this.ping());
    }
    return promise;
  }

  /** Drops the connection (and so the feed) and makes it again: for a barrier that got no answer. */
  reset(reason: string): void {
    this.lose(reason);
    if (!this.closed) this.connection.disconnect(true);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.lose("closing");
    this.connection.disconnect(false);
  }

  /** Sends the queued barrier's PING; when it returns, the next one's, if any. */
  private ping(): void {
    const batch = this.queued;
    this.queued = undefined;
    if (!batch) {
      this.pinging = false;
      return;
    }
    const session = this.session;
    if (!this.current) {
      batch.settle(false);
      this.ping();
      return;
    }
    let answered = false;
    const answer = (passed: boolean) => {
      if (answered) return;
      answered = true;
      clearTimeout(watchdog);
      batch.settle(passed);
      this.ping();
    };
    const hungMs = this.options.hungAfterMs ?? this.timeoutMs * 10;
    const watchdog = setTimeout(() => {
      if (this.session === session) this.reset(`no answer to a barrier PING within ${hungMs} ms`);
      answer(false);
    }, hungMs);
    this.connection.ping().then(
      () => answer(this.current && this.session === session),
      () => answer(false),
    );
  }

  /** On every (re)connection: tracking on, same server as the store, subscribed; only then live. */
  private async begin(): Promise<void> {
    const session = this.session;
    const connection = this.connection;
    try {
      const id = Number(await connection.client("ID"));
      await connection.call("CLIENT", "TRACKING", "ON", "REDIRECT", String(id), "BCAST", "PREFIX", this.keyPrefix);
      const runId = /^run_id:(\w+)/m.exec(await connection.info("server"))?.[1];
      const storeRunId = await this.options.storeRunId?.();
      if (this.options.storeRunId && storeRunId !== runId) {
        throw new Error("the store's connection reaches another Valkey server than the invalidation connection");
      }
      await connection.subscribe(invalidationChannel);
      if (this.closed || this.session !== session || connection.status !== "ready") return;
      if (this.runId !== undefined && runId !== this.runId) {
        this.options.log.warn({ runId }, "Valkey restarted or failed over (its run_id changed)");
      }
      this.runId = runId;
      this.id = id;
      this.failures = 0;
      this.reported = undefined;
      this.session++;
      this.current = true;
      this.options.onStateChange?.(true, "tracking tag keys");
      this.emit("all");
    } catch (error) {
      if (this.closed || this.session !== session) return;
      const reason = error instanceof Error ? error.message : String(error);
      // The first tries often only find the store's connection still opening; past them, said once per reason.
      this.failures++;
      if (this.failures >= 3 && reason !== this.reported) {
        this.reported = reason;
        this.options.log.warn({ reason }, "tag tracking unavailable: the in-process tier is off until it works");
      }
      // Try again from a new connection, backing off.
      setTimeout(() => this.reset("tag tracking could not start"), backoff(this.failures)).unref();
    }
  }

  private lose(reason: string): void {
    this.session++;
    const queued = this.queued;
    this.queued = undefined;
    queued?.settle(false);
    if (!this.current) return;
    this.current = false;
    this.options.onStateChange?.(false, reason);
    this.emit("all");
  }

  private deliver(message: Buffer | Buffer[] | null): void {
    // A flush (FLUSHALL, FLUSHDB) arrives as a null message.
    if (!Array.isArray(message)) {
      this.emit("all");
      return;
    }
    const tags: string[] = [];
    for (const key of message) {
      const name = key.toString();
      if (!name.startsWith(this.keyPrefix)) continue;
      const tag = name.slice(this.keyPrefix.length);
      // The epoch retires every entry at once.
      if (tag === epochTag) {
        this.emit("all");
        return;
      }
      tags.push(tag);
    }
    if (tags.length > 0) this.emit(tags);
  }

  private emit(change: TagChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (error) {
        this.options.log.error({ err: error }, "a tag change listener failed");
      }
    }
  }
}
