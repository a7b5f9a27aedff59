// Unit test (pure logic, no services): a count watched by many is published
// less often, so one topic's fan-out can't take the whole event loop
// (server/live/count-hub.ts, maxTopicEventsPerSecond).
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { TagChange } from "../server/cache/tag-tracking.ts";
import { CountHub, type CountInput } from "../server/live/count-hub.ts";
import { createLogger } from "../server/logger.ts";
import { createMetrics } from "../server/metrics.ts";

let listener: (change: TagChange) => void = () => {};
let count = 0;
let hub: CountHub;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "performance"] });
  hub = new CountHub({
    tagOf: (input: CountInput) =>
      input.customerId === undefined ? "orders:all" : `orders:customer:${input.customerId}`,
    load: async (inputs) => inputs.map(() => count),
    feed: {
      live: true,
      onTagsChanged: (l) => {
        listener = l;
        return () => {};
      },
    },
    maxSubscriptions: 1000,
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
    expect(final.all.take()?.count).toBe(count);
    expect(final.one.take()?.count).toBe(count);
  });
});
