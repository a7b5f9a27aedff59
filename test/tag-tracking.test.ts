// The tag-change feed on a real Valkey-protocol server: writes of tag keys by
// another connection arrive as tag names, the epoch as "all", a killed
// connection as "all" twice (lost, back), and a barrier passed after a write's
// reply has always delivered that write's invalidation.
import { describe, expect, inject, it } from "vitest";
import { epochTag, tagKey } from "../server/cache/keys.ts";
import { type TagChange, TagTracking } from "../server/cache/tag-tracking.ts";
import { createLogger } from "../server/logger.ts";
import { useFixture } from "./support/fixture.ts";
import { TcpProxy } from "./support/tcp-proxy.ts";
import { cachePrefix, valkeyClient } from "./support/valkey.ts";

const prefix = cachePrefix();
const changes: TagChange[] = [];
const tracking = useFixture(
  async () => {
    const feed = new TagTracking({ url: inject("valkeyUrl"), prefix, log: createLogger("silent") });
    feed.onTagsChanged((change) => changes.push(change));
    const live = new Promise<void>((resolve) => {
      const off = feed.onTagsChanged(() => {
        if (!feed.live) return;
        off();
        resolve();
      });
    });
    feed.start();
    await live;
    return feed;
  },
  (feed) => feed.close(),
);
const valkey = useFixture(
  async () => valkeyClient(),
  async (client) => void client.disconnect(),
);

describe("the tag-change feed", () => {
  it("names the tags another connection wrote, and ignores other keys", async () => {
    changes.length = 0;
    await valkey.set(tagKey(prefix, "orders:customer:9"), "a");
    await valkey.set(`${prefix}:v1:q:orders.count:{}`, "entry");
    await valkey.mset(tagKey(prefix, "orders:all"), "b", tagKey(prefix, "orders:year:2004"), "c");
    expect(await tracking.barrier()).toBe(true);
    expect(changes.flatMap((change) => (change === "all" ? ["all"] : change)).sort()).toEqual([
      "orders:all",
      "orders:customer:9",
      "orders:year:2004",
    ]);
  });

  it("says 'all' when the epoch is bumped", async () => {
    changes.length = 0;
    await valkey.set(tagKey(prefix, epochTag), "e2");
    expect(await tracking.barrier()).toBe(true);
    expect(changes).toContain("all");
  });

  it("has delivered a write's invalidation once a barrier started after the write's reply passes", async () => {
    for (let i = 0; i < 300; i++) {
      changes.length = 0;
      const tag = `orders:customer:${i}`;
      await valkey.set(tagKey(prefix, tag), String(i));
      expect(await tracking.barrier()).toBe(true);
      expect(changes).toContainEqual([tag]);
    }
  });

  it("says 'all' when its connection is killed, and again once it tracks again", async () => {
    changes.length = 0;
    const before = tracking.clientId;
    expect(await valkey.call("CLIENT", "KILL", "ID", String(before))).toBe(1);
    await expect.poll(() => changes.filter((c) => c === "all").length, { timeout: 5000 }).toBe(2);
    expect(tracking.live).toBe(true);
    expect(tracking.clientId).not.toBe(before);
    changes.length = 0;
    await valkey.set(tagKey(prefix, "orders:customer:1"), "after");
    expect(await tracking.barrier()).toBe(true);
    expect(changes).toEqual([["orders:customer:1"]]);
  });

  it("gives a barrier up at its timeout when the PING is not answered, and makes the connection again once it is hung", async () => {
    const url = inject("valkeyUrl");
    const target = new URL(url);
    const proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 6379) });
    const states: [boolean, string][] = [];
    const feed = new TagTracking({
      url: proxy.url(url),
      prefix,
      log: createLogger("silent"),
      barrierTimeoutMs: 50,
      hungAfterMs: 300,
      onStateChange: (live, reason) => states.push([live, reason]),
    });
    try {
      feed.start();
      await expect.poll(() => feed.live, { timeout: 5000 }).toBe(true);
      proxy.holdReplies();
      // Each barrier gives up by itself; the reads it held go to Valkey.
      expect(await feed.barrier()).toBe(false);
      expect(await feed.barrier()).toBe(false);
      await expect.poll(() => feed.live, { timeout: 5000 }).toBe(false);
      expect(states.at(-1)).toEqual([false, "no answer to a barrier PING within 300 ms"]);
      proxy.restore();
      await expect.poll(() => feed.live, { timeout: 5000 }).toBe(true);
      expect(await feed.barrier()).toBe(true);
    } finally {
      await feed.close();
      await proxy.close();
    }
  });
});
