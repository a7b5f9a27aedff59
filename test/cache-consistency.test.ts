// No read that starts after a write was acknowledged returns older data, even
// when it races the write; concurrent misses share one database read; entries expire.
import type { Logger as DrizzleLogger } from "drizzle-orm/logger";
import { describe, expect, inject, it } from "vitest";
import { connectPostgres } from "../db/client.ts";
import type { AppOverrides } from "../server/app.ts";
import { QueryCache } from "../server/cache/query-cache.ts";
import { ValkeyStore } from "../server/cache/valkey-store.ts";
import { startTestApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { type Deferred, deferred } from "./support/deferred.ts";
import { NaiveCache } from "./support/naive-cache.ts";
import { cachePrefix, valkeyClient } from "./support/valkey.ts";

const db = useTestDatabase("seeded");

type CacheFactory = (prefix: string, beforeStore: (key: string) => Promise<void>) => AppOverrides["cache"];

const versionedCache: CacheFactory =
  (prefix, beforeStore) =>
  ({ log, metrics }) =>
    new QueryCache({
      store: new ValkeyStore({ url: inject("valkeyUrl") }),
      prefix,
      ttlSeconds: 120,
      log,
      metrics,
      beforeStore,
    });

const naiveCache: CacheFactory = (prefix, beforeStore) => () => new NaiveCache(valkeyClient(), prefix, beforeStore);

/**
 * Forces the interleaving: a read misses and reads the count from PostgreSQL,
 * then waits (between its database read and its store) while a write commits,
 * invalidates and is acknowledged; then the read stores what it read. Returns
 * the count before, what the raced read answered, and what a read that starts
 * after the acknowledgement answers.
 */
async function raceReadAgainstWrite(factory: CacheFactory, customerId: number) {
  let held: { reached: Deferred; release: Deferred } | undefined;
  const beforeStore = async () => {
    const hold = held;
    if (!hold) return;
    held = undefined;
    hold.reached.resolve();
    await hold.release.promise;
  };
  const server = await startTestApp({ DATABASE_URL: db.url }, { cache: factory(cachePrefix(), beforeStore) });
  try {
    const [{ n: before } = { n: -1 }] = await db.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM orders WHERE customerid = ${customerId}`;
    const hold = { reached: deferred(), release: deferred() };
    held = hold;
    const raced = server.client.orders.count.query({ customerId });
    await hold.reached.promise; // the read has the old count and is about to store it
    await server.client.orders.add.mutate({ customerId, netAmount: "5.00", tax: "0.41" });
    hold.release.resolve();
    const racedRead = (await raced).count;
    const after = (await server.client.orders.count.query({ customerId })).count;
    const later = (await server.client.orders.count.query({ customerId })).count;
    // The HTTP fast path answers hits from the same entries: it must not serve the raced value either.
    const rest = ((await (await fetch(`${server.url}/count?customerid=${customerId}`)).json()) as { count: number })
      .count;
    return { before, racedRead, after, later, rest };
  } finally {
    await server.close();
  }
}

describe("a read racing a write", () => {
  it("never leaves the old value to later reads", async () => {
    const result = await raceReadAgainstWrite(versionedCache, 10);
    expect(result.racedRead).toBe(result.before); // it began before the write: either value is right
    expect(result.after).toBe(result.before + 1);
    expect(result.later).toBe(result.before + 1);
    expect(result.rest).toBe(result.before + 1);
  });

  it("does leave it with the tutorial's delete-on-write cache (so the test above has teeth)", async () => {
    const result = await raceReadAgainstWrite(naiveCache, 11);
    expect(result.after).toBe(result.before); // stale: served from the cache after the write was acknowledged
  });
});

describe("a stampede of identical misses", () => {
  it("makes one database query per process for 200 concurrent calls", async () => {
    const queries: string[] = [];
    const logger: DrizzleLogger = { logQuery: (query) => void queries.push(query) };
    const database = connectPostgres(db.url, { max: 10, logger });
    const server = await startTestApp(
      { DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: cachePrefix() },
      { database },
    );
    try {
      expect(await server.app.cache.ready(5000)).toBe(true);
      const calls = Array.from({ length: 200 }, () => server.client.orders.monthly.query({ year: 2004 }));
      const results = await Promise.all(calls);
      expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
      expect(queries.filter((q) => q.includes('from "order_monthly_stats"'))).toHaveLength(1);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/^cache_loads_total\{procedure="orders.monthly"\} 1$/m);
    } finally {
      await server.close();
    }
  });
});

describe("expiry", () => {
  it("serves an entry until its TTL and reads the database again after it", async () => {
    const server = await startTestApp({
      DATABASE_URL: db.url,
      VALKEY_URL: inject("valkeyUrl"),
      CACHE_PREFIX: cachePrefix(),
      CACHE_TTL_SECONDS: "1",
    });
    try {
      expect(await server.app.cache.ready(5000)).toBe(true);
      const outcomes = async () =>
        server.logs.filter((l) => l.msg === "cache hit" || l.msg === "cache miss").map((l) => l.msg);
      await server.client.orders.count.query({ customerId: 12 });
      await server.client.orders.count.query({ customerId: 12 });
      await new Promise((resolve) => setTimeout(resolve, 1300));
      await server.client.orders.count.query({ customerId: 12 });
      expect(await outcomes()).toEqual(["cache miss", "cache hit", "cache miss"]);
    } finally {
      await server.close();
    }
  });
});
