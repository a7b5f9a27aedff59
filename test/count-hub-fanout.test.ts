// Unit test (pure logic, no services): a count watched by many is published
// less often, so one topic's fan-out can't take the whole event loop
// (server/live/count-hub.ts, maxTopicEventsPerSecond); and a new subscriber's
// first count is read after it arrived, shared by all who arrived meanwhile,
// whatever the throttle holds back (test/live-counts.test.ts shows it end to end).
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { TagChange } from "../server/cache/tag-tracking.ts";
import { CountHub, type CountInput } from "../server/live/count-hub.ts";
import { createLogger } from "../server/logger.ts";
import { createMetrics } from "../server/metrics.ts";

let listener: (change: TagChange) => void = () => {};
let count = 0;
let hub: CountHub;
/** The database: each load reads `count` as it is when the load starts (its snapshot), and answers when `answer` lets it. */
let loads = 0;
let answer: (reply: () => void) => void = (reply) => reply();

beforeEach(() => {
  loads = 0;
  answer = (reply) => reply();
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "performance"] });
  hub = new CountHub({
    tagOf: (input: CountInput) =>
      input.customerId === undefined ? "orders:all" : `orders:customer:${input.customerId}`,
    load: (inputs) => {
      loads++;
      const snapshot = count;
      return new Promise((resolve) => answer(() => resolve(inputs.map(() => snapshot))));
    },
    feed: {
      live: true,
      onTagsChanged: (l) => {
        listener = l;
        return () => {};
      },
    },
    maxSubscriptions: 10_000,
    log: createLogger("silent"),
    metrics: createMetrics(),
    minIntervalMs: 50,
    maxTopicEventsPerSecond: 1000,
  });
});

afterEach(() => {
  hub.close();
  vi.useRealTimers();
});

/** Publications of each watched topic while its count changes every 5 ms for one second. */
async function publicationsPerSecond(subscribers: Record<string, number>): Promise<Record<string, number>> {
  const seen: Record<string, Set<string>> = {};
  for (const [tag, n] of Object.entries(subscribers)) {
    seen[tag] = new Set();
    const input = tag === "orders:all" ? {} : { customerId: Number(tag.split(":")[2]) };
    for (let i = 0; i < n; i++) {
      const subscription = hub.subscribe(input, () => {
        const event = subscription.take();
        if (event) seen[tag]?.add(event.id);
      });
    }
  }
  await vi.advanceTimersByTimeAsync(0);
  for (let t = 0; t < 1000; t += 5) {
    count++;
    listener(Object.keys(subscribers));
    await vi.advanceTimersByTimeAsync(5);
  }
  return Object.fromEntries(Object.entries(seen).map(([tag, ids]) => [tag, ids.size]));
}

describe("CountHub fan-out", () => {
  it("publishes a lightly watched count every 50 ms, a count watched by many less often, and both end at the latest", async () => {
    // 200 subscribers at 1,000 events/s: one publication per 200 ms; 3 subscribers: per 50 ms.
    const published = await publicationsPerSecond({ "orders:all": 200, "orders:customer:7": 3 });
    expect(published["orders:customer:7"]).toBeGreaterThanOrEqual(18);
    expect(published["orders:customer:7"]).toBeLessThanOrEqual(22);
    expect(published["orders:all"]).toBeGreaterThanOrEqual(4);
    expect(published["orders:all"]).toBeLessThanOrEqual(6);
    // No change is dropped: after the last one, both publish the final count.
    await vi.advanceTimersByTimeAsync(250);
    const final = { all: hub.subscribe({}), one: hub.subscribe({ customerId: 7 }) };
    await Promise.all([final.all.ready(), final.one.ready()]);
    expect(final.all.take()?.count).toBe(count);
    expect(final.one.take()?.count).toBe(count);
  });
});

describe("a new subscriber's first count", () => {
  /** Holds every load until released, so a wave can be caught running. */
  function holdLoads() {
    const held: (() => void)[] = [];
    answer = (reply) => held.push(reply);
    return {
      held,
      release: async () => {
        for (const reply of held.splice(0)) reply();
        await vi.advanceTimersByTimeAsync(0);
      },
    };
  }

  it("is read by a wave that starts after it arrived, never the one running, and thousands share that read", async () => {
    count = 1;
    const watcher = hub.subscribe({ customerId: 9 });
    await watcher.ready();
    expect(watcher.take()?.count).toBe(1);
    const loads0 = loads;
    const db = holdLoads();
    // A change starts a wave whose snapshot holds 2 (its interval is up after 50 ms)...
    await vi.advanceTimersByTimeAsync(50);
    count = 2;
    listener(["orders:customer:9"]);
    expect(db.held).toHaveLength(1);
    // ...then a write is acknowledged (3) and 1,000 subscribers arrive while that wave runs.
    count = 3;
    const arrived = Array.from({ length: 1000 }, () => hub.subscribe({ customerId: 9 }));
    await db.release(); // the running wave answers 2: not theirs
    expect(arrived[0]?.take()).toBeUndefined();
    expect(db.held).toHaveLength(1); // the next wave, for all of them at once
    await db.release();
    await Promise.all(arrived.map((subscription) => subscription.ready()));
    for (const subscription of arrived) expect(subscription.take()?.count).toBe(3);
    expect(loads - loads0).toBe(2);
  });

  it("isn't held back by the throttle, which still holds it back from the others until their interval is up", async () => {
    count = 1;
    const watcher = hub.subscribe({ customerId: 11 });
    const pushed: number[] = [];
    const pushes = hub.subscribe({ customerId: 11 }, () => {
      const event = pushes.take();
      if (event) pushed.push(event.count);
    });
    await watcher.ready();
    expect(watcher.take()?.count).toBe(1);
    // Changes within the 50 ms interval: the topic isn't read for them until it is up.
    count = 2;
    listener(["orders:customer:11"]);
    await vi.advanceTimersByTimeAsync(10);
    count = 3;
    listener(["orders:customer:11"]);
    const late = hub.subscribe({ customerId: 11 });
    await late.ready();
    const first = late.take();
    expect(first?.count).toBe(3);
    // The others are sent 3 when their interval is up, not before; the new one isn't sent it again.
    expect(watcher.take()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(30);
    expect(watcher.take()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(20);
    expect(watcher.take()?.count).toBe(3);
    expect(pushed).toEqual([1, 3]);
    expect(late.take()).toBeUndefined();
    // Reconnecting with the id of the count held back from the others: nothing is sent again.
    const resumed = hub.subscribe({ customerId: 11 });
    await resumed.ready();
    resumed.resumeFrom(first?.id);
    expect(resumed.take()).toBeUndefined();
    count = 4;
    listener(["orders:customer:11"]);
    await vi.advanceTimersByTimeAsync(50);
    for (const subscription of [watcher, late, resumed]) expect(subscription.take()?.count).toBe(4);
  });

  it("held back from the others, is read again before they are sent it if a change came after it", async () => {
    count = 1;
    const watcher = hub.subscribe({ customerId: 12 });
    await watcher.ready();
    expect(watcher.take()?.count).toBe(1);
    count = 2;
    listener(["orders:customer:12"]);
    const late = hub.subscribe({ customerId: 12 }); // reads 2 at once, held back from the watcher
    await late.ready();
    expect(late.take()?.count).toBe(2);
    await vi.advanceTimersByTimeAsync(10);
    count = 3;
    listener(["orders:customer:12"]);
    // When the interval is up the watcher is sent the newest count, not 2 now and 3 an interval later.
    await vi.advanceTimersByTimeAsync(40);
    expect(watcher.take()?.count).toBe(3);
    expect(late.take()?.count).toBe(3);
  });

  it("is refused when its read fails, not answered with an older count", async () => {
    count = 1;
    const watcher = hub.subscribe({ customerId: 13 });
    await watcher.ready();
    expect(watcher.take()?.count).toBe(1);
    answer = () => {
      throw new Error("the database is gone");
    };
    const late = hub.subscribe({ customerId: 13 });
    await expect(late.ready()).rejects.toThrow("the database is gone");
    expect(late.take()).toBeUndefined();
  });
});
