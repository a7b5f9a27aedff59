// Pure parts of the cache, without services.
import { describe, expect, it } from "vitest";
import { Breaker, CacheUnavailable } from "../server/cache/breaker.ts";
import { entryKey, newToken, tagKey } from "../server/cache/keys.ts";
import { MemoryStore } from "../server/cache/memory-store.ts";
import { SingleFlight } from "../server/cache/single-flight.ts";
import { deferred } from "./support/deferred.ts";

describe("keys", () => {
  it("are the same for equal inputs whatever their key order", () => {
    expect(entryKey("p", "orders.count", { a: 1, b: { c: 2, d: 3 } })).toBe(
      entryKey("p", "orders.count", { b: { d: 3, c: 2 }, a: 1 }),
    );
    expect(entryKey("p", "orders.count", { customerId: 1 })).not.toBe(entryKey("p", "orders.count", { customerId: 2 }));
    expect(entryKey("p", "orders.count", undefined)).toBe("p:v1:q:orders.count:");
  });

  it("hash long inputs, and keep procedures and tags apart", () => {
    const long = entryKey("p", "x", { text: "y".repeat(500) });
    expect(long.length).toBeLessThan(80);
    expect(long).not.toBe(entryKey("p", "x", { text: "z".repeat(500) }));
    expect(entryKey("p", "a", 1)).not.toBe(entryKey("p", "b", 1));
    expect(tagKey("p", "orders:all")).toBe("p:v1:t:orders:all");
  });

  it("give every version token once", () => {
    const tokens = new Set(Array.from({ length: 10_000 }, newToken));
    expect(tokens.size).toBe(10_000);
  });
});

describe("the memory store", () => {
  it("is bounded in entries, evicting the least recently used", async () => {
    const store = new MemoryStore({ maxEntries: 3 });
    await store.mset(["a", "b", "c"].map((key) => ({ key, value: key, ttlSeconds: 60 })));
    await store.mget(["a"]);
    await store.mset([{ key: "d", value: "d", ttlSeconds: 60 }]);
    expect(await store.mget(["a", "b", "c", "d"])).toEqual(["a", null, "c", "d"]);
    expect(store.size).toBe(3);
  });

  it("is bounded in bytes", async () => {
    const store = new MemoryStore({ maxEntries: 1000, maxBytes: 10_000 });
    for (let i = 0; i < 100; i++) await store.mset([{ key: `k${i}`, value: "x".repeat(1000), ttlSeconds: 60 }]);
    expect(store.size).toBeLessThanOrEqual(5);
    expect(await store.mget(["k99"])).toEqual(["x".repeat(1000)]);
  });

  it("expires entries after their TTL", async () => {
    const store = new MemoryStore();
    await store.mset([{ key: "k", value: "v", ttlSeconds: 1 }]);
    expect(await store.mget(["k"])).toEqual(["v"]);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await store.mget(["k"])).toEqual([null]);
  });

  it("sets a key only if absent, returning what it holds", async () => {
    const store = new MemoryStore();
    expect(await store.setIfAbsent({ key: "t", value: "first", ttlSeconds: 60 })).toBe("first");
    expect(await store.setIfAbsent({ key: "t", value: "second", ttlSeconds: 60 })).toBe("first");
  });
});

describe("single flight", () => {
  it("runs one load for concurrent calls with a key, and a new one after it settles", async () => {
    const flights = new SingleFlight();
    const gate = deferred<number>();
    let loads = 0;
    const load = () => {
      loads++;
      return gate.promise;
    };
    const calls = [flights.run("k", load), flights.run("k", load), flights.run("other", () => Promise.resolve(7))];
    gate.resolve(42);
    expect(await Promise.all(calls)).toEqual([42, 42, 7]);
    expect(loads).toBe(1);
    expect(flights.size).toBe(0);
    await flights.run("k", () => Promise.resolve(1));
  });

  it("lets a successful outcome linger for calls that come just after it, never a failure", async () => {
    const flights = new SingleFlight();
    let loads = 0;
    const load = async () => ++loads;
    expect(await flights.run("k", load, 50)).toBe(1);
    expect(await flights.run("k", load, 50)).toBe(1); // settled, still lingering
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await flights.run("k", load, 50)).toBe(2);
    await expect(flights.run("f", () => Promise.reject(new Error("boom")), 50)).rejects.toThrow("boom");
    expect(await flights.run("f", async () => "ok", 50)).toBe("ok");
  });

  it("runFresh never joins a load that started before the call: the calls meanwhile share the next one", async () => {
    const flights = new SingleFlight();
    const gates = [deferred<number>(), deferred<number>(), deferred<number>()];
    let loads = 0;
    const load = () => (gates[loads++] as ReturnType<typeof deferred<number>>).promise;
    const first = flights.runFresh("k", load); // starts load 1
    const later = [flights.runFresh("k", load), flights.runFresh("k", load)]; // wait for load 2
    expect(loads).toBe(1);
    gates[0]?.resolve(1);
    expect(await first).toBe(1);
    await expect.poll(() => loads).toBe(2);
    const duringSecond = flights.runFresh("k", load); // load 2 has started: this one waits for a third
    gates[1]?.resolve(2);
    expect(await Promise.all(later)).toEqual([2, 2]);
    await expect.poll(() => loads).toBe(3);
    expect(await Promise.race([duringSecond, Promise.resolve("pending")])).toBe("pending");
    gates[2]?.resolve(3);
    expect(await duringSecond).toBe(3);
  });

  it("shares a failure too, then forgets it", async () => {
    const flights = new SingleFlight();
    const failing = () => Promise.reject(new Error("boom"));
    await expect(Promise.all([flights.run("k", failing), flights.run("k", failing)])).rejects.toThrow("boom");
    expect(await flights.run("k", () => Promise.resolve("ok"))).toBe("ok");
  });
});

describe("the breaker", () => {
  function breaker(recover: () => Promise<void>) {
    const changes: string[] = [];
    const b = new Breaker({
      recover,
      onStateChange: (s) => changes.push(s),
      onError: () => {},
      retryMs: 10,
      maxRetryMs: 20,
    });
    return { b, changes };
  }

  it("starts open, closes only once recovery succeeds, and reopens on the first failure", async () => {
    let attempts = 0;
    const { b, changes } = breaker(async () => {
      if (++attempts < 3) throw new Error("not yet");
    });
    await expect(b.run("read", async () => 1)).rejects.toBeInstanceOf(CacheUnavailable);
    b.start();
    await expect.poll(() => b.state).toBe("up");
    expect(attempts).toBe(3);
    expect(await b.run("read", async () => 1)).toBe(1);
    await expect(b.run("read", () => Promise.reject(new Error("gone")))).rejects.toBeInstanceOf(CacheUnavailable);
    expect(b.state).toBe("down");
    let called = false;
    await expect(
      b.run("read", async () => {
        called = true;
      }),
    ).rejects.toBeInstanceOf(CacheUnavailable);
    expect(called).toBe(false);
    await expect.poll(() => b.state).toBe("up");
    expect(changes).toEqual(["down", "up", "down", "up"]); // the first failed probe is reported too
    b.stop();
  });
});
