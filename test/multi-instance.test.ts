// Three server processes share PostgreSQL and Valkey. API writes go to any of
// them, psql writes behind all of them, and all three serve concurrent reads,
// while Valkey is cut off, the change applier is killed (SIGKILL), and the
// three are restarted one after another. Every request's start, end and answer
// is recorded, and the history is checked: no read that began after a write
// was acknowledged (for psql writes: after their commit plus the 100 ms
// propagation bound, or the takeover bound while the applier is replaced)
// returns an older count.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { epochTag, tagKey } from "../server/cache/keys.ts";
import { bounds } from "./support/chaos/model.ts";
import { useTestDatabase } from "./support/database.ts";
import { useFixture } from "./support/fixture.ts";
import {
  count,
  Fleet,
  impossibleReads,
  type Key,
  metric,
  recordHistory,
  staleReads,
  type Write,
} from "./support/fleet.ts";
import { type ServerProcess, shippedServer, startServerProcess } from "./support/server-process.ts";
import { useProxy } from "./support/tcp-proxy.ts";
import { cachePrefix, valkeyClient } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const valkeyProxy = useProxy(() => inject("valkeyUrl"), 6379);
const valkey = useFixture(
  async () => valkeyClient(),
  async (client) => void client.disconnect(),
);
const prefix = cachePrefix();
const fleet = new Fleet(() =>
  startServerProcess(
    { DATABASE_URL: db.url, VALKEY_URL: valkeyProxy.url(inject("valkeyUrl")), CACHE_PREFIX: prefix },
    shippedServer,
  ),
);
beforeAll(() => fleet.startAll());
afterAll(() => fleet.stop());

/**
 * A psql write's bound: the applier's next pass (at once on its wake-up), which on an idle machine is a few
 * milliseconds; while this suite saturates both cores, passes wait their turn on the event loop.
 */
const propagationMs = bounds.outside;
/** While the applier is replaced: another instance's election (250 ms, or at once on a wake) and first pass. */
const takeoverMs = bounds.handover;
const customers = [40, 41, 42];
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

async function metrics(server: ServerProcess): Promise<{ hits: number; misses: number; retired: number }> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);
  return {
    hits: value(/^cache_requests_total\{procedure="orders.count",result="hit"\} (\d+)/m),
    misses: value(/^cache_requests_total\{procedure="orders.count",result="miss"\} (\d+)/m),
    retired: value(/^cache_retire_all_total (\d+)/m),
  };
}

describe("three instances, one truth", () => {
  it("serve no stale read through API and psql writes, a Valkey cut, an applier killed and a rolling restart", async () => {
    const at = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms)); // the scenario's timeline
    let applierKilledAt = Number.POSITIVE_INFINITY;
    const history = await recordHistory({
      fleet,
      databaseUrl: db.url,
      customers,
      scenario: async () => {
        await at(1500);
        valkeyProxy.cut();
        await at(1000);
        valkeyProxy.restore();
        await at(1500);
        // Roles may still be settling after the Valkey cut (an applier that couldn't reach it steps down).
        let roles: number[] = [];
        await expect
          .poll(
            async () => {
              roles = await Promise.all(fleet.servers.map((s) => metric(s, /^cache_applier (\d+)/m)));
              return roles.filter((role) => role === 1).length;
            },
            { timeout: 15_000 },
          )
          .toBe(1);
        applierKilledAt = performance.now();
        await fleet.restart(roles.indexOf(1), undefined, "SIGKILL");
        await at(1500);
        for (const index of [0, 1, 2]) await fleet.restart(index);
        await at(1000);
      },
    });
    const { base, reads, writes } = history;
    const replacing = (w: Write) => w.end >= applierKilledAt - propagationMs && w.end <= applierKilledAt + takeoverMs;
    const stale = staleReads(history, propagationMs, (w) => (replacing(w) ? takeoverMs : propagationMs));
    console.log(
      `history: ${reads.length} reads on 3 instances, ${writes.filter((w) => w.via === "api").length} API writes, ` +
        `${writes.filter((w) => w.via === "psql").length} psql writes, through a Valkey cut, an applier killed ` +
        `and a rolling restart; stale reads: ${stale.length}`,
    );
    expect(writes.filter((w) => w.via === "api").length).toBeGreaterThan(20);
    expect(writes.filter((w) => w.via === "psql").length).toBeGreaterThan(10);
    expect(reads.length).toBeGreaterThan(1000);
    for (const r of stale) {
      const before = writes.filter(
        (w) => (w.customer === r.key || r.key === "all") && w.end <= r.start && w.end > r.start - 1000,
      );
      console.log(
        `stale read ${JSON.stringify(r)} (applier killed at ${applierKilledAt.toFixed(0)}); writes of the second before it: ${JSON.stringify(before)}`,
      );
    }
    expect(stale).toEqual([]);
    expect(impossibleReads(history)).toEqual([]);
    const [{ n: total } = { n: 0 }] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders`;
    expect(total).toBe((base.get("all") ?? 0) + writes.length);
  }, 120_000);

  it("keep the cache warm through a rolling restart under read load: ≥ 90 % hits, no epoch bump", async () => {
    // Enough keys that retiring them all shows: every entry would be missed again after each restart.
    const keys: Key[] = ["all", ...Array.from({ length: 1000 }, (_, i) => 100 + i)];
    const warming = [...keys];
    const warmer = async () => {
      for (let key = warming.pop(); key !== undefined; key = warming.pop()) await fleet.on((s) => count(s, key));
    };
    await Promise.all(Array.from({ length: 8 }, warmer));
    const epochBefore = await valkey.get(tagKey(prefix, epochTag));
    const totals = { hits: 0, misses: 0, retired: 0 };
    const add = (m: { hits: number; misses: number; retired: number }, sign: 1 | -1) => {
      totals.hits += sign * m.hits;
      totals.misses += sign * m.misses;
      totals.retired += sign * m.retired;
    };
    for (const server of fleet.servers) add(await metrics(server), -1);

    let done = false;
    const reader = async () => {
      while (!done) {
        const key = pick(keys);
        await fleet.on((s) => count(s, key));
      }
    };
    const restarts = (async () => {
      for (const index of [0, 1, 2]) await fleet.restart(index, async (old) => add(await metrics(old), 1));
      done = true;
    })();
    await Promise.all([restarts, ...Array.from({ length: 8 }, reader)]);
    for (const server of fleet.servers) add(await metrics(server), 1);

    const rate = totals.hits / (totals.hits + totals.misses);
    console.log(
      `rolling restart of 3 instances under read load: ${totals.hits + totals.misses} reads, hit rate ` +
        `${(100 * rate).toFixed(1)} %, epoch bumps ${totals.retired} (${(totals.retired / 3).toFixed(1)} per restart)`,
    );
    expect(totals.hits + totals.misses).toBeGreaterThan(1000);
    expect(rate).toBeGreaterThanOrEqual(0.9);
    expect(totals.retired).toBe(0);
    expect(await valkey.get(tagKey(prefix, epochTag))).toBe(epochBefore);
  }, 120_000);
});
