// The shared store: one iovalkey client per process, short timeouts and no
// offline queue, so a missing or hung Valkey fails fast instead of piling up work.
import { Valkey } from "iovalkey";
import type { CacheStore, StoreEntry } from "./store.ts";

export interface ValkeyStoreOptions {
  /** Longest wait for one command; past it the command fails (and the breaker opens). */
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export class ValkeyStore implements CacheStore {
  readonly kind = "valkey";
  readonly client: Valkey;

  constructor(url: string, { commandTimeoutMs = 200, connectTimeoutMs = 1000 }: ValkeyStoreOptions = {}) {
    this.client = new Valkey(url, {
      commandTimeout: commandTimeoutMs,
      connectTimeout: connectTimeoutMs,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      enableAutoPipelining: true,
      // Reconnect forever, backing off to one attempt every two seconds.
      retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
    });
    // Connection errors surface as failed commands, which the breaker handles;
    // without a listener iovalkey would print each one.
    this.client.on("error", () => {});
  }

  async mget(keys: readonly string[]): Promise<(string | null)[]> {
    return this.client.mget(...keys);
  }

  async mset(entries: readonly StoreEntry[]): Promise<void> {
    const pipeline = this.client.pipeline();
    for (const { key, value, ttlSeconds } of entries) pipeline.set(key, value, "EX", ttlSeconds);
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([error]) => error);
    if (failed?.[0]) throw failed[0];
  }

  async setIfAbsent({ key, value, ttlSeconds }: StoreEntry): Promise<string> {
    const previous = await this.client.set(key, value, "EX", ttlSeconds, "NX", "GET");
    return previous ?? value;
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}
