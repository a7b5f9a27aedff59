// The in-process tier's own logic, with a hand-driven feed: hits only under
// the mirror's current tokens, the fetch race, "all", the byte budget.
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

/** A lookup that read `tokens` (epoch first) and found `payload` current in Valkey. */
function fetched(local: LocalTier, key: string, tags: string[], tokens: string, payload?: string) {
  local.completeFetch(local.beginFetch(tags), key, tokens, payload, 60_000);
}

describe("the in-process tier", () => {
  it("answers an entry stored under the mirror's tokens, after a barrier", async () => {
    const { local, feed } = tier();
    expect(await local.find("k", ["a"])).toBeUndefined(); // nothing to wait for
    expect(feed.barriers).toBe(0);
    fetched(local, "k", ["a"], "e1,a1", '{"count":1}');
    expect(await local.find("k", ["a"])).toEqual({ tokens: "e1,a1", payload: '{"count":1}' });
    expect(feed.barriers).toBe(1);
  });

  it("stops answering once a tag it depends on changes, or everything does", async () => {
    const { local, feed } = tier();
    fetched(local, "k", ["a"], "e1,a1", "1");
    feed.change(["b"]);
    expect(await local.find("k", ["a"])).toBeDefined();
    feed.change(["a"]);
    expect(await local.find("k", ["a"])).toBeUndefined();
    fetched(local, "k", ["a"], "e1,a2", "2");
    expect(await local.find("k", ["a"])).toEqual({ tokens: "e1,a2", payload: "2" });
    feed.change("all");
    expect(await local.find("k", ["a"])).toBeUndefined();
  });

  it("keeps no token whose invalidation overtook the lookup that read it (the fetch race)", async () => {
    const { local, feed } = tier();
    const fetch = local.beginFetch(["a"]);
    feed.change(["a"]); // the write after the read's MGET: its invalidation arrives first
    local.completeFetch(fetch, "k", "e1,a1", "old", 60_000);
    expect(await local.find("k", ["a"])).toBeUndefined();
    fetched(local, "k", ["a"], "e1,a2", "new");
    expect(await local.find("k", ["a"])).toEqual({ tokens: "e1,a2", payload: "new" });
  });

  it("keeps nothing while the feed is down, nor what a lookup begun before it went down read", async () => {
    const { local, feed } = tier();
    const before = local.beginFetch(["a"]);
    feed.live = false;
    feed.change("all"); // lost
    fetched(local, "k", ["a"], "e1,a1", "1");
    feed.live = true;
    feed.change("all"); // back
    local.completeFetch(before, "k", "e1,a1", "1", 60_000);
    expect(await local.find("k", ["a"])).toBeUndefined();
  });

  it("keeps a value this process loaded only under the mirror's current tokens", async () => {
    const { local, feed } = tier();
    fetched(local, "k", ["a"], "e1,a1"); // the miss's lookup: tokens, no entry
    local.offer("k", ["a"], "e1,a1", "1", 60_000);
    expect(await local.find("k", ["a"])).toEqual({ tokens: "e1,a1", payload: "1" });
    // A write retired the tokens the load ran under while it ran: its value is not kept.
    fetched(local, "j", ["b"], "e1,b1");
    feed.change(["b"]);
    local.offer("j", ["b"], "e1,b1", "1", 60_000);
    fetched(local, "j", ["b"], "e1,b2");
    expect(await local.find("j", ["b"])).toBeUndefined();
    // Nor without a lifetime (the LRU would keep it for good).
    fetched(local, "i", ["c"], "e1,c1");
    local.offer("i", ["c"], "e1,c1", "1", 0);
    expect(await local.find("i", ["c"])).toBeUndefined();
    // Nor while the feed is down.
    feed.live = false;
    local.offer("k", ["a"], "e1,a1", "2", 60_000);
    feed.live = true;
    expect(await local.find("k", ["a"])).toEqual({ tokens: "e1,a1", payload: "1" });
  });

  it("fills in a tag after a lookup that marked it failed", async () => {
    const { local } = tier();
    local.beginFetch(["a"]); // its Valkey read failed: never completed
    fetched(local, "k", ["a"], "e1,a1", "1");
    expect(await local.find("k", ["a"])).toEqual({ tokens: "e1,a1", payload: "1" });
  });

  it("answers nothing when the barrier fails", async () => {
    const { local, feed } = tier();
    fetched(local, "k", ["a"], "e1,a1", "1");
    feed.barrier = async () => false;
    expect(await local.find("k", ["a"])).toBeUndefined();
  });

  it("depends on the epoch too", async () => {
    const { local, feed } = tier();
    fetched(local, "k", [], "e1", "1");
    expect(await local.find("k", [])).toBeDefined();
    feed.change([epochTag]);
    expect(await local.find("k", [])).toBeUndefined();
  });

  it("stays within its byte budget, dropping the least recently used entries", async () => {
    const { local, metrics } = tier(64 * 1024);
    const payload = "x".repeat(1000);
    for (let i = 0; i < 100; i++) fetched(local, `k${i}`, [`t${i}`], `e1,t${i}`, payload);
    const bytes = (await metrics.l1Bytes.get()).values[0]?.value ?? 0;
    expect(bytes).toBeGreaterThan(32 * 1024);
    expect(bytes).toBeLessThanOrEqual(64 * 1024);
    expect(await local.find("k0", ["t0"])).toBeUndefined();
    expect(await local.find("k99", ["t99"])).toBeDefined();
  });
});
