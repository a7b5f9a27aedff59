// The in-process store's feed of tag-version changes: what tag-tracking.ts
// gets from Valkey, for one process without Valkey. The memory store reports
// the keys it writes (memory-store.ts); the tag keys among them are bumps.
import { epochTag, tagKey } from "./keys.ts";
import type { TagChange, TagFeed } from "./tag-tracking.ts";

export class MemoryTagFeed implements TagFeed {
  /** Nothing can be lost between a store and a listener in one process. */
  readonly live = true;
  private readonly listeners = new Set<(change: TagChange) => void>();
  private readonly keyPrefix: string;

  constructor(prefix: string) {
    this.keyPrefix = tagKey(prefix, "");
  }

  onTagsChanged(listener: (change: TagChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The store wrote these keys (after they are visible to reads). */
  written(keys: readonly string[]): void {
    if (this.listeners.size === 0) return;
    const tags = keys.filter((key) => key.startsWith(this.keyPrefix)).map((key) => key.slice(this.keyPrefix.length));
    if (tags.length === 0) return;
    const change: TagChange = tags.includes(epochTag) ? "all" : tags;
    for (const listener of this.listeners) listener(change);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
