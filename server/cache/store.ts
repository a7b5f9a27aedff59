// What the query cache needs from a key-value store: batched reads and writes
// with a time to live, and an atomic "set unless present". Valkey implements
// it for sharing between instances, an in-process LRU for the embedded default.

export interface StoreEntry {
  key: string;
  value: string;
  ttlSeconds: number;
}

export interface CacheStore {
  readonly kind: "valkey" | "memory";
  /** The values of `keys`, in order; null where a key is absent or expired. */
  mget(keys: readonly string[]): Promise<(string | null)[]>;
  mset(entries: readonly StoreEntry[]): Promise<void>;
  /** Sets `key` unless it holds a value; returns the value it holds afterwards. */
  setIfAbsent(entry: StoreEntry): Promise<string>;
  /** How long `key` has left to live, in ms; undefined if it is absent or never expires. */
  remainingTtlMs?(key: string): Promise<number | undefined>;
  close(): Promise<void>;
  /**
   * Calls `listener` whenever the connection to the store is lost. Whatever
   * comes back may be another server, or the same one restarted empty or from
   * an older snapshot: nothing read before may be trusted after.
   */
  onConnectionLost?(listener: () => void): void;
  /** Why the store last failed to connect, if it did: more telling than the failed command. */
  readonly lastConnectionError?: unknown;
}
