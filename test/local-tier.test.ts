// The in-process tier's own logic, with a hand-driven feed and a hand-written
// tier below it: hits only under the mirror's current tokens, the fetch race,
// "all", the check of a response's tokens, the byte budget.
import { describe, expect, it } from "vitest";
import { epochTag } from "../server/cache/keys.ts";
import { LocalTier } from "../server/cache/local-tier.ts";
import type { TagChange } from "../server/cache/tag-tracking.ts";
import { createMetrics } from "../server/metrics.ts";

class HandFeed {
  live = true;
  barriers = 0;
  private readonly listeners = new Set<(change: TagChange) => void>();
  onTagsChanged(listener: (change: TagChange) => void) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  change(change: TagChange) {
    for (const listener of this.listeners) listener(change);
  }
  async barrier() {
    this.barriers++;
    return this.live;
  }
}

function tier(maxBytes = 1024 * 1024) {
  const feed = new HandFeed();
  const metrics = createMetrics();
  return { feed, metrics, local: new LocalTier({ maxBytes, feed, metrics }) };
}

/** A read the tier sent down, which found `found` there (the tokens read, the entry current under them). */
function through(local: LocalTier, key: string, tags: string[], tokens: string, payload?: string, ttlMs = 60_000) {
  return local.get(key, tags, async () => ({ tokens, payload, ttlMs }));
}

/** The copy the tier answers `key` with itself, or undefined when the read went down. */
async function cached(local: LocalTier, key: string, tags: readonly string[]) {
  let wentDown = false;
  const found = await local.get(key, tags, async () => {
    wentDown = true;
    return undefined;
  });
  return wentDown ? undefined : found;
}

const copy = (tokens: string, payload: string) => ({ tier: "l1", tokens, payload });

describe("the in-process tier", () => {
  it("answers an entry stored under the mirror's tokens, after a barrier", async () => {
    const { local, feed } = tier();
    expect(await cached(local, "k", ["a"])).toBeUndefined(); // nothing to wait for
    expect(feed.barriers).toBe(0);
    await through(local, "k", ["a"], "e1,a1", '{"count":1}');
    expect(await cached(local, "k", ["a"])).toEqual(copy("e1,a1", '{"count":1}'));
    expect(feed.barriers).toBe(1);
  });

  it("stops answering once a tag it depends on changes, or everything does", async () => {
    const { local, feed } = tier();
    await through(local, "k", ["a"], "e1,a1", "1");
    feed.change(["b"]);
    expect(await cached(local, "k", ["a"])).toBeDefined();
    feed.change(["a"]);
    expect(await cached(local, "k", ["a"])).toBeUndefined();
    await through(local, "k", ["a"], "e1,a2", "2");
    expect(await cached(local, "k", ["a"])).toEqual(copy("e1,a2", "2"));
    feed.change("all");
    expect(await cached(local, "k", ["a"])).toBeUndefined();
  });

  it("keeps no token whose invalidation overtook the read that read it (the fetch race)", async () => {
    const { local, feed } = tier();
    const raced = await local.get("k", ["a"], async () => {
      feed.change(["a"]); // the write after the read's MGET: its invalidation arrives before the reply
      return { tokens: "e1,a1", payload: "old", ttlMs: 60_000 };
    });
    expect(raced).toMatchObject({ payload: "old" }); // the read itself began before the write: it may answer it
    expect(await cached(local, "k", ["a"])).toBeUndefined();
    await through(local, "k", ["a"], "e1,a2", "new");
    expect(await cached(local, "k", ["a"])).toEqual(copy("e1,a2", "new"));
  });

  it("keeps nothing while the feed is down, nor what a read begun before it went down read", async () => {
    const { local, feed } = tier();
    await local.get("k", ["a"], async () => {
      feed.live = false;
      feed.change("all"); // lost
      await through(local, "k", ["a"], "e1,a1", "1");
      feed.live = true;
      feed.change("all"); // back
      return { tokens: "e1,a1", payload: "1", ttlMs: 60_000 };
    });
    expect(await cached(local, "k", ["a"])).toBeUndefined();
  });

  it("keeps what a miss loaded under the tokens read before it, unless a write retired them meanwhile", async () => {
    const { local, feed } = tier();
    await through(local, "k", ["a"], "e1,a1", "1"); // the miss's tokens, and the value it loaded and stored
    expect(await cached(local, "k", ["a"])).toEqual(copy("e1,a1", "1"));
    // A write retired the tokens the load ran under while it ran: its value is not kept.
    await local.get("j", ["b"], async () => {
      feed.change(["b"]);
      return { tokens: "e1,b1", payload: "1", ttlMs: 60_000 };
    });
    await through(local, "j", ["b"], "e1,b2"); // a later read: the new tokens, no entry yet
    expect(await cached(local, "j", ["b"])).toBeUndefined();
    // Nor without a lifetime (the LRU would keep it for good).
    await through(local, "i", ["c"], "e1,c1", "1", 0);
    expect(await cached(local, "i", ["c"])).toBeUndefined();
    // Nor while the feed is down.
    feed.live = false;
    await through(local, "k", ["a"], "e1,a1", "2");
    feed.live = true;
    expect(await cached(local, "k", ["a"])).toEqual(copy("e1,a1", "1"));
  });

  it("fills in a tag after a read that marked it failed", async () => {
    const { local } = tier();
    const failed = local.get("k", ["a"], () => Promise.reject(new Error("Valkey read failed")));
    await expect(failed).rejects.toThrow("Valkey read failed");
    await through(local, "k", ["a"], "e1,a1", "1");
    expect(await cached(local, "k", ["a"])).toEqual(copy("e1,a1", "1"));
  });

  it("answers nothing when the barrier fails", async () => {
    const { local, feed } = tier();
    await through(local, "k", ["a"], "e1,a1", "1");
    feed.barrier = async () => false;
    expect(await cached(local, "k", ["a"])).toBeUndefined();
  });

  it("depends on the epoch too", async () => {
    const { local, feed } = tier();
    await through(local, "k", [], "e1", "1");
    expect(await cached(local, "k", [])).toBeDefined();
    feed.change([epochTag]);
    expect(await cached(local, "k", [])).toBeUndefined();
  });

  it("tells whether tokens are the tags' current ones by the mirror after the barrier, else by the tier below", async () => {
    const { local, feed } = tier();
    const reads: string[] = [];
    const below = (tokens: string | undefined) => async () => {
      reads.push(tokens ?? "none");
      return tokens;
    };
    // Unknown to the mirror: the tokens read below say, and fill it in.
    expect(await local.isCurrent(["a"], "e1,a1", below("e1,a1"))).toBe(true);
    const barriers = feed.barriers;
    expect(await local.isCurrent(["a"], "e1,a1", below("never asked"))).toBe(true);
    expect(feed.barriers).toBe(barriers + 1);
    expect(await local.isCurrent(["a"], "e1,a0", below("never asked"))).toBe(false);
    expect(feed.barriers).toBe(barriers + 1); // a mirror that disagrees needs no barrier
    expect(reads).toEqual(["e1,a1"]);
    feed.change(["a"]);
    expect(await local.isCurrent(["a"], "e1,a1", below("e1,a2"))).toBe(false);
    expect(await local.isCurrent(["a"], "e1,a2", below("never asked"))).toBe(true);
    // A late barrier, or the feed down: the tier below says.
    feed.barrier = async () => false;
    expect(await local.isCurrent(["a"], "e1,a2", below("e1,a2"))).toBe(true);
    feed.live = false;
    expect(await local.isCurrent(["a"], "e1,a2", below("e1,a3"))).toBe(false);
    expect(reads).toEqual(["e1,a1", "e1,a2", "e1,a2", "e1,a3"]);
  });

  it("keeps no token whose invalidation overtook the read of a response's tokens", async () => {
    const { local, feed } = tier();
    const raced = await local.isCurrent(["a"], "e1,a1", async () => {
      feed.change(["a"]);
      return "e1,a1";
    });
    expect(raced).toBe(true); // it began before the write
    let asked = false;
    const later = await local.isCurrent(["a"], "e1,a1", async () => {
      asked = true;
      return "e1,a2";
    });
    expect({ asked, later }).toEqual({ asked: true, later: false });
  });

  it("stays within its byte budget, dropping the least recently used entries", async () => {
    const { local, metrics } = tier(64 * 1024);
    const payload = "x".repeat(1000);
    for (let i = 0; i < 100; i++) await through(local, `k${i}`, [`t${i}`], `e1,t${i}`, payload);
    const bytes = (await metrics.l1Bytes.get()).values[0]?.value ?? 0;
    expect(bytes).toBeGreaterThan(32 * 1024);
    expect(bytes).toBeLessThanOrEqual(64 * 1024);
    expect(await cached(local, "k0", ["t0"])).toBeUndefined();
    expect(await cached(local, "k99", ["t99"])).toBeDefined();
  });
});
