// The in-process tier (L1) in front of Valkey: a mirror of the tags' version
// tokens, kept as fresh as Valkey by the tag-change feed (tag-tracking.ts), and
// copies of entries found current in Valkey. A hit here is exactly a hit there:
// an entry stored under the tags' current tokens, read from the mirror after
// the feed's barrier, so every invalidation of a write acknowledged before the
// read arrived has been applied.
//
// The fetch race (Valkey's client-side caching docs): a token read from Valkey
// can be overtaken by its invalidation, which arrives on the other connection.
// Before a lookup reads tokens from Valkey it marks the tags it lacks; an
// invalidation removes the mark, and the token read is kept only where the mark
// is still its own. While the feed is down the mirror is empty, and nothing
// fetched before is kept: each new feed starts from nothing.
import { LRUCache } from "lru-cache";
import type { Metrics } from "../metrics.ts";
import { epochTag } from "./keys.ts";
import type { TagFeed } from "./tag-tracking.ts";

export interface LocalTierOptions {
  /** L1_MAX_BYTES: the tier's budget, entries and mirror together (estimated from string lengths). */
  maxBytes: number;
  feed: TagFeed & { barrier(): Promise<boolean> };
  metrics: Metrics;
  /** Test seam: serve without the barrier (test/l1-barrier.test.ts shows the stale read that follows). */
  skipBarrier?: boolean;
}

/** A lookup's mark on the tags whose tokens it may fill in. */
export interface Fetch {
  readonly tags: readonly string[];
  readonly mark: object;
}

interface Entry {
  tokens: string;
  payload: string;
}

// About what a Map slot and the LRU's bookkeeping cost besides the strings.
const overheadBytes = 96;
// The mirror's share of the budget: tokens are short, entries are not.
const mirrorShare = 1 / 8;

export class LocalTier {
  private readonly versions: LRUCache<string, string | object>;
  private readonly entries: LRUCache<string, Entry>;

  constructor(private readonly options: LocalTierOptions) {
    const mirrorBytes = Math.max(1, Math.floor(options.maxBytes * mirrorShare));
    this.versions = new LRUCache<string, string | object>({
      maxSize: mirrorBytes,
      sizeCalculation: (value, tag) =>
        (tag.length + (typeof value === "string" ? value.length : 0)) * 2 + overheadBytes,
    });
    this.entries = new LRUCache<string, Entry>({
      maxSize: Math.max(1, options.maxBytes - mirrorBytes),
      sizeCalculation: (entry, key) => (key.length + entry.tokens.length + entry.payload.length) * 2 + overheadBytes,
    });
    options.feed.onTagsChanged((change) => {
      if (change === "all") this.versions.clear();
      else for (const tag of change) this.versions.delete(tag);
      this.report();
    });
  }

  /** The entry, if current by the mirror after the barrier; undefined sends the lookup to Valkey. */
  async find(key: string, tags: readonly string[]): Promise<{ tokens: string; payload: string } | undefined> {
    const { feed, metrics, skipBarrier } = this.options;
    if (!feed.live) {
      metrics.l1Requests.inc({ result: "off" });
      return undefined;
    }
    // Without a copy there is nothing to wait for.
    if (this.entries.has(key) && (skipBarrier || (await feed.barrier()))) {
      const tokens = this.tokens(tags);
      const entry = tokens === undefined ? undefined : this.entries.get(key);
      if (entry && entry.tokens === tokens) {
        metrics.l1Requests.inc({ result: "hit" });
        return entry;
      }
    }
    metrics.l1Requests.inc({ result: "miss" });
    return undefined;
  }

  /**
   * Before reading tokens from Valkey: marks the tags the mirror lacks. Taking
   * over another lookup's mark is safe (an invalidation since then would have
   * removed it) and leaves none behind by a lookup that failed.
   */
  beginFetch(tags: readonly string[]): Fetch {
    const all = [epochTag, ...tags];
    const mark = {};
    if (this.options.feed.live) {
      for (const tag of all) if (typeof this.versions.get(tag) !== "string") this.versions.set(tag, mark);
    }
    return { tags: all, mark };
  }

  /**
   * After it: fills in the tags still marked by this fetch with the tokens it
   * read, and keeps a copy of an entry that is current by them, for as long as
   * Valkey keeps it (`ttlMs`).
   */
  completeFetch(fetch: Fetch, key: string, tokens: string, payload: string | undefined, ttlMs: number | undefined) {
    const read = tokens.split(",");
    if (read.length !== fetch.tags.length) return;
    fetch.tags.forEach((tag, i) => {
      if (this.versions.get(tag) === fetch.mark) this.versions.set(tag, read[i] as string);
    });
    if (payload !== undefined && ttlMs !== undefined && ttlMs > 0 && this.tokens(fetch.tags.slice(1)) === tokens) {
      this.entries.set(key, { tokens, payload }, { ttl: ttlMs });
    }
    this.report();
  }

  /**
   * A value this process just loaded and stored under `tokens`: kept as a copy
   * when they are the tags' current tokens by the mirror (as completeFetch
   * keeps one read from Valkey), so the hits after a write's reload don't each
   * go to Valkey first to find it.
   */
  offer(key: string, tags: readonly string[], tokens: string, payload: string, ttlMs: number): void {
    // (A TTL of 0 would mean "forever" to the LRU.)
    if (!this.options.feed.live || ttlMs <= 0 || this.tokens(tags) !== tokens) return;
    this.entries.set(key, { tokens, payload }, { ttl: ttlMs });
    this.report();
  }

  /** The tags' current tokens (the epoch's first), joined as entries store them; undefined if one is unknown. */
  private tokens(tags: readonly string[]): string | undefined {
    const epoch = this.versions.get(epochTag);
    if (typeof epoch !== "string") return undefined;
    let tokens = epoch;
    for (const tag of tags) {
      const token = this.versions.get(tag);
      if (typeof token !== "string") return undefined;
      tokens += `,${token}`;
    }
    return tokens;
  }

  private report(): void {
    const { metrics } = this.options;
    metrics.l1Bytes.set(this.entries.calculatedSize + this.versions.calculatedSize);
    metrics.l1Entries.set(this.entries.size);
  }
}
