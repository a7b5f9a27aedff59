// The shared store: one iovalkey client per process (a Cluster client for
// Valkey Cluster), short timeouts and no offline queue, so a missing or hung
// Valkey fails fast instead of piling up work.
//
// On a cluster every command touches one key: entries and tags spread over
// all masters, and nothing needs keys to share a hash slot. The cache never
// needs a multi-key read to be atomic (query-cache.ts), only its tag tokens to
// be read before the database is.
import { Cluster, Valkey } from "iovalkey";
import { isCertificateError } from "../../db/client.ts";
import type { CacheStore, StoreEntry } from "./store.ts";

export interface ValkeyStoreOptions {
  /** Longest wait for one command; past it the command fails (and the breaker opens). */
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
}

// Reconnect forever, backing off to one attempt every two seconds.
const backoff = (attempt: number) => Math.min(50 * 2 ** attempt, 2000);

/** Where the cache lives: a Valkey URL, or the `host:port` seeds of a Valkey Cluster. */
export type ValkeyTarget = { url: string } | { clusterNodes: string[] };

export class ValkeyStore implements CacheStore {
  readonly kind = "valkey";
  readonly client: Valkey | Cluster;
  private lastError: unknown;
  private certificateError: unknown;

  /** Since the last successful connection: a certificate that didn't verify, the likeliest cause, else the latest error. */
  get lastConnectionError(): unknown {
    return this.certificateError ?? this.lastError;
  }

  constructor(target: ValkeyTarget, { commandTimeoutMs = 200, connectTimeoutMs = 1000 }: ValkeyStoreOptions = {}) {
    const options = { commandTimeout: commandTimeoutMs, connectTimeout: connectTimeoutMs, maxRetriesPerRequest: 0 };
    this.client =
      "url" in target
        ? new Valkey(target.url, {
            ...options,
            enableOfflineQueue: false,
            enableAutoPipelining: true,
            retryStrategy: backoff,
          })
        : new Cluster(target.clusterNodes.map(parseNode), {
            redisOptions: options,
            enableOfflineQueue: false,
            enableAutoPipelining: true,
            clusterRetryStrategy: backoff,
          });
    // Connection errors surface as failed commands, which the breaker handles;
    // without a listener iovalkey would print each one.
    this.client.on("error", (error: unknown) => {
      this.lastError = error;
      if (isCertificateError(error)) this.certificateError = error;
    });
    this.client.on("ready", () => {
      this.lastError = this.certificateError = undefined;
    });
  }

  onConnectionLost(listener: () => void): void {
    this.client.on("close", listener);
  }

  private get cluster(): boolean {
    return this.client instanceof Cluster;
  }

  async mget(keys: readonly string[]): Promise<(string | null)[]> {
    if (this.cluster) return Promise.all(keys.map((key) => this.client.get(key)));
    return this.client.mget(...keys);
  }

  /**
   * One SET per entry, not a pipeline of its own: auto-pipelining sends every
   * command issued in the same tick in one write, so the bumps and stores of
   * concurrent requests share a socket write (an explicit pipeline is always
   * one write per call). Nothing here needs the SETs to be atomic.
   */
  async mset(entries: readonly StoreEntry[]): Promise<void> {
    await Promise.all(entries.map(({ key, value, ttlSeconds }) => this.client.set(key, value, "EX", ttlSeconds)));
  }

  async setIfAbsent({ key, value, ttlSeconds }: StoreEntry): Promise<string> {
    const previous = await this.client.set(key, value, "EX", ttlSeconds, "NX", "GET");
    return previous ?? value;
  }

  async remainingTtlMs(key: string): Promise<number | undefined> {
    const ms = await this.client.pttl(key);
    return ms >= 0 ? ms : undefined;
  }

  /** The run_id of the server this store's connection reaches (a standalone server only). */
  async runId(): Promise<string | undefined> {
    if (this.client instanceof Cluster) return undefined;
    return /^run_id:(\w+)/m.exec(await this.client.info("server"))?.[1];
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}

function parseNode(node: string): { host: string; port: number } {
  const at = node.lastIndexOf(":");
  return { host: node.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(node.slice(at + 1)) };
}
