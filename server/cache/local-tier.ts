// The in-process tier (L1), a layer in front of the shared store (Valkey): a
// mirror of the tags' version tokens, kept as fresh as Valkey by the tag-change
// feed (tag-tracking.ts), and copies of entries found current below it. A read
// enters it once (`get`): a copy current by the mirror after the feed's
// barrier is answered here; anything else goes down to the tier below (the
// store, and the load a miss there makes), and on the way back the mirror
// takes the tokens that tier read and a copy of an entry current by them. A hit
// here is exactly a hit there: an entry stored under the tags' current tokens,
// read from the mirror after the barrier, so every invalidation of a write
// acknowledged before the read arrived has been applied.
//
// The fetch race (Valkey's client-side caching docs): a token read from Valkey
// can be overtaken by its invalidation, which arrives on the other connection.
// Before a read goes down it marks the tags the mirror lacks; an invalidation
// removes the mark, and a token read below is kept only where the mark is
// still that read's own. While the feed is down the mirror is empty, and
// nothing read before is kept: each new feed starts from nothing.
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

/** What the tier below answers a read with. */
export interface Found {
  /** The tags' tokens it read (the epoch's first), joined as entries store them. */
  tokens: string;
  /** The entry current under them, serialized, if there was one (or the value a miss loaded and stored). */
  payload?: string | undefined;
  /** How long a copy may live here: as long as the store keeps the entry. */
  ttlMs?: number | undefined;
}

/** An entry this tier answered itself. */
export interface Copy {
  readonly tier: "l1";
  readonly tokens: string;
  readonly payload: string;
}

/** A read's mark on the tags whose tokens it may fill in. */
interface Mark {
  readonly tags: readonly string[];
  readonly mark: object;
}

// About what a Map slot and the LRU's bookkeeping cost besides the strings.
const overheadBytes = 96;
// The mirror's share of the budget: tokens are short, entries are not.
const mirrorShare = 1 / 8;

export class LocalTier {
  private readonly versions: LRUCache<string, string | object>;
  private readonly entries: LRUCache<string, Copy>;

  constructor(private readonly options: LocalTierOptions) {
    const mirrorBytes = Math.max(1, Math.floor(options.maxBytes * mirrorShare));
    this.versions = new LRUCache<string, string | object>({
      maxSize: mirrorBytes,
      sizeCalculation: (value, tag) =>
        (tag.length + (typeof value === "string" ? value.length : 0)) * 2 + overheadBytes,
    });
    this.entries = new LRUCache<string, Copy>({
      maxSize: Math.max(1, options.maxBytes - mirrorBytes),
      sizeCalculation: (entry, key) => (key.length + entry.tokens.length + entry.payload.length) * 2 + overheadBytes,
    });
    options.feed.onTagsChanged((change) => {
      if (change === "all") this.versions.clear();
      else for (const tag of change) this.versions.delete(tag);
      this.report();
    });
  }

  /**
   * One read of `key` through this tier: its copy if current by the mirror
   * after the barrier, else what `below` answers (undefined: the store could
   * not be read), whose tokens fill in the mirror and whose entry is kept as a
   * copy, on the way back, where the fetch race allows. `below` is told
   * whether a copy may be kept at all (so it need not ask how long for).
   */
  async get<F extends Found>(
    key: string,
    tags: readonly string[],
    below: (keepable: boolean) => Promise<F | undefined>,
  ): Promise<F | Copy | undefined> {
    const copy = await this.find(key, tags);
    if (copy) return copy;
    const mark = this.mark(tags);
    const found = await below(this.options.feed.live);
    if (found) this.fill(mark, found, key);
    return found;
  }

  /**
   * Whether `tokens` (the epoch's first) are the tags' current tokens for a
   * read arriving now: a response made from an entry stored under them is
   * still what a read would answer. By the mirror after the barrier, as a copy
   * is checked; where the mirror can't say (a tag it lacks, the feed down, the
   * barrier's answer late), by the tokens `below` reads (undefined: it
   * couldn't), which fill in the mirror as a read's do.
   */
  async isCurrent(tags: readonly string[], tokens: string, below: () => Promise<string | undefined>): Promise<boolean> {
    const { feed, metrics, skipBarrier } = this.options;
    if (!feed.live) {
      metrics.l1Requests.inc({ result: "off" });
      return (await below()) === tokens;
    }
    const mirrored = this.tokens(tags);
    // The barrier only ever removes tokens: a mirror that disagrees now can't agree after it.
    if (mirrored !== undefined && mirrored !== tokens) {
      metrics.l1Requests.inc({ result: "miss" });
      return false;
    }
    if (mirrored !== undefined && (skipBarrier || (await feed.barrier()))) {
      const now = this.tokens(tags);
      if (now !== undefined) {
        metrics.l1Requests.inc({ result: now === tokens ? "hit" : "miss" });
        return now === tokens;
      }
    }
    metrics.l1Requests.inc({ result: "miss" });
    const mark = this.mark(tags);
    const read = await below();
    if (read !== undefined) this.fill(mark, { tokens: read });
    return read === tokens;
  }

  /** The copy, if current by the mirror after the barrier; undefined sends the read down. */
  private async find(key: string, tags: readonly string[]): Promise<Copy | undefined> {
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
   * Before a read goes down (so before it reads tokens): marks the tags the
   * mirror lacks. Taking over another read's mark is safe (an invalidation
   * since then would have removed it) and leaves none behind by a read that
   * failed.
   */
  private mark(tags: readonly string[]): Mark {
    const all = [epochTag, ...tags];
    const mark = {};
    if (this.options.feed.live) {
      for (const tag of all) if (typeof this.versions.get(tag) !== "string") this.versions.set(tag, mark);
    }
    return { tags: all, mark };
  }

  /**
   * On the way back: fills in the tags still marked by this read with the
   * tokens it read, and keeps a copy of `key`'s entry if it is current by the
   * mirror, for as long as the store keeps it (`ttlMs`; 0 would mean "forever"
   * to the LRU, so it keeps nothing).
   */
  private fill({ tags, mark }: Mark, { tokens, payload, ttlMs }: Found, key?: string): void {
    if (!this.options.feed.live) return;
    const read = tokens.split(",");
    if (read.length !== tags.length) return;
    tags.forEach((tag, i) => {
      if (this.versions.get(tag) === mark) this.versions.set(tag, read[i] as string);
    });
    const keep = key !== undefined && payload !== undefined && ttlMs !== undefined && ttlMs > 0;
    if (keep && this.tokens(tags.slice(1)) === tokens) {
      this.entries.set(key, { tier: "l1", tokens, payload }, { ttl: ttlMs });
    }
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
