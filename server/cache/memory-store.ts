// The in-process store: an LRU bounded in entries and bytes, with per-entry TTL.
import { LRUCache } from "lru-cache";
import type { CacheStore, StoreEntry } from "./store.ts";

export interface MemoryStoreOptions {
  maxEntries?: number;
  /** Upper bound on the UTF-16 length of keys plus values, about their size in memory. */
  maxBytes?: number;
  /** Told the keys of every mset once they are readable (memory-feed.ts turns tag keys into changes). */
  onWrite?: (keys: readonly string[]) => void;
}

export class MemoryStore implements CacheStore {
  readonly kind = "memory";
  private readonly lru: LRUCache<string, string>;
  private readonly onWrite: ((keys: readonly string[]) => void) | undefined;

  constructor({ maxEntries = 50_000, maxBytes = 64 * 1024 * 1024, onWrite }: MemoryStoreOptions = {}) {
    this.onWrite = onWrite;
    this.lru = new LRUCache<string, string>({
      max: maxEntries,
      maxSize: maxBytes,
      sizeCalculation: (value, key) => (key.length + value.length) * 2,
    });
  }

  async mget(keys: readonly string[]): Promise<(string | null)[]> {
    return keys.map((key) => this.lru.get(key) ?? null);
  }

  async mset(entries: readonly StoreEntry[]): Promise<void> {
    for (const { key, value, ttlSeconds } of entries) this.lru.set(key, value, { ttl: ttlSeconds * 1000 });
    this.onWrite?.(entries.map((entry) => entry.key));
  }

  async setIfAbsent(entry: StoreEntry): Promise<string> {
    const existing = this.lru.get(entry.key);
    if (existing !== undefined) return existing;
    await this.mset([entry]);
    return entry.value;
  }

  get size(): number {
    return this.lru.size;
  }

  async close(): Promise<void> {
    this.lru.clear();
  }
}
