// Three server processes with the in-process tier on (the default) share
// PostgreSQL and a Valkey server of this test's own, so it can be restarted.
// API writes go to any of them and psql writes behind all of them, while
// Valkey is cut off and comes back, the invalidation connections are killed
// (CLIENT KILL), Valkey restarts empty, and the three restart one after
// another. The history checker finds no read that began after a write was
// acknowledged (psql: committed plus the 300 ms bound) returning an older count,
// and the tier answered hits.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { trackingConnectionName } from "../server/cache/tag-tracking.ts";
import { bounds } from "./support/chaos/model.ts";
import { useTestDatabase } from "./support/database.ts";
import { useFixture } from "./support/fixture.ts";
import { Fleet, impossibleReads, metric, recordHistory, staleReads, type Write } from "./support/fleet.ts";
import { command } from "./support/local-cluster.ts";
import { startLocalValkey } from "./support/local-valkey.ts";
import { type ServerProcess, startServerProcess } from "./support/server-process.ts";
import { TcpProxy } from "./support/tcp-proxy.ts";

const db = useTestDatabase("seeded");
const valkey = useFixture(startLocalValkey, (server) => server.stop());
const proxy = useFixture(
  () => TcpProxy.start({ host: "127.0.0.1", port: valkey.port }),
  (p) => p.close(),
);
const fleet = new Fleet(() =>
  startServerProcess({ DATABASE_URL: db.url, VALKEY_URL: proxy.url(valkey.url), CACHE_PREFIX: "l1-history" }, [
    "node",
    "--import",
    "tsx",
    "server/main.ts",
  ]),
);
beforeAll(() => fleet.startAll());
afterAll(() => fleet.stop());

const l1Hits = (server: ServerProcess) => metric(server, /^cache_l1_requests_total\{result="hit"\} (\d+)/m);

/** The instances' invalidation connections, by CLIENT ID. */
async function invalidationConnections(): Promise<string[]> {
  const list = String((await command(valkey.port, "CLIENT", "LIST", "TYPE", "pubsub")) ?? "");
  return list
    .split("\n")
    .filter((line) => line.includes(`name=${trackingConnectionName}`))
    .map((line) => /\bid=(\d+)/.exec(line)?.[1] ?? "");
}

describe("three instances with the in-process tier", () => {
  it("serve no stale read through a Valkey cut, CLIENT KILL, a Valkey restart, psql writes and a rolling restart", async () => {
    let hits = 0;
    /** The rolling restart's steps: the applier may be the instance stopping (it hands its lock over). */
    const restarts: { start: number; end: number }[] = [];
    const at = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms)); // the scenario's timeline
    const history = await recordHistory({
      fleet,
      databaseUrl: db.url,
      customers: [40, 41, 42],
      scenario: async () => {
        await at(1500);
        proxy.cut();
        await at(1000);
        proxy.restore();
        await at(1500);
        // Back after the cut: one per instance.
        await expect.poll(async () => (await invalidationConnections()).length, { timeout: 30_000 }).toBe(3);
        for (const id of await invalidationConnections()) await command(valkey.port, "CLIENT", "KILL", "ID", id);
        await at(1500);
        await valkey.restart();
        await at(2000);
        const countHits = async (old: ServerProcess) => {
          hits += await l1Hits(old);
        };
        for (const index of [0, 1, 2]) {
          const restart = { start: performance.now(), end: 0 };
          restarts.push(restart);
          await fleet.restart(index, countHits);
          restart.end = performance.now();
        }
        await at(1500);
      },
    });
    for (const server of fleet.servers) hits += await l1Hits(server);

    const { reads, writes } = history;
    // The bounds the guarantees state for a write made outside the app on a saturated machine: one applier
    // pass, or the applier's handover while an instance restarts.
    const handingOver = (w: Write) =>
      restarts.some((r) => w.end >= r.start - bounds.outside && w.end <= (r.end || Infinity) + bounds.handover);
    const stale = staleReads(history, bounds.outside, (w) => (handingOver(w) ? bounds.handover : bounds.outside));
    console.log(
      `history with L1: ${reads.length} reads on 3 instances (${hits} answered from process memory), ` +
        `${writes.filter((w) => w.via === "api").length} API writes, ${writes.filter((w) => w.via === "psql").length} psql writes, ` +
        `through a Valkey cut, CLIENT KILL, a Valkey restart and a rolling restart; stale reads: ${stale.length}`,
    );
    expect(writes.filter((w) => w.via === "api").length).toBeGreaterThan(20);
    expect(writes.filter((w) => w.via === "psql").length).toBeGreaterThan(10);
    expect(reads.length).toBeGreaterThan(1000);
    expect(hits).toBeGreaterThan(100); // the tier was in use
    const t0 = Math.min(...reads.map((r) => r.start));
    const missed = stale.map((r) => {
      const last = writes.filter((w) => (r.key === "all" || w.customer === r.key) && w.end <= r.start).at(-1);
      return `instance ${r.server} read ${r.key}=${r.value} at ${Math.round(r.start - t0)} ms; last write ${last?.via} ended ${Math.round((last?.end ?? 0) - t0)} ms`;
    });
    expect(missed).toEqual([]);
    expect(impossibleReads(history)).toEqual([]);
  }, 120_000);
});
