// Restarts, reconnects and store outages keep the cache warm: only what may
// really have changed meanwhile is retired, replayed from the change log
// (server/cache/applier.ts); and only what may have changed is invalidated.
// Real PostgreSQL and Valkey, with TCP proxies to cut or hang them.
import { describe, expect, inject, it } from "vitest";
import { epochTag, tagKey } from "../server/cache/keys.ts";
import { startTestApp, type TestApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { useFixture } from "./support/fixture.ts";
import { useProxy } from "./support/tcp-proxy.ts";
import { cachePrefix, valkeyClient } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const valkeyProxy = useProxy(() => inject("valkeyUrl"), 6379);
const prefix = cachePrefix();
const env = () => ({ DATABASE_URL: db.url, VALKEY_URL: valkeyProxy.url(inject("valkeyUrl")), CACHE_PREFIX: prefix });
const server = useFixture(
  () => startTestApp(env()),
  (app) => app.close(),
);
const valkey = useFixture(
  async () => valkeyClient(),
  async (client) => void client.disconnect(),
);

const count = async (app: TestApp, customerId: number) => {
  const res = await fetch(`${app.url}/count?customerid=${customerId}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { count: number }).count;
};
const truth = async (customerId: number) =>
  (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders WHERE customerid = ${customerId}`)[0]?.n;
const metric = async (app: TestApp, name: string, labels = "") => {
  const text = await (await fetch(`${app.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return Number(line?.split(" ")[1] ?? 0);
};
const hits = (app: TestApp) => metric(app, "cache_requests_total", '{procedure="orders.count",result="hit"}');
const health = async (app: TestApp) => (await (await fetch(`${app.url}/health`)).json()) as Record<string, string>;
const epoch = () => valkey.get(tagKey(prefix, epochTag));
/** Resolves after `n` more applier passes (each recorded what the cache has applied). */
const passes = async (app: TestApp, n: number) => {
  const from = await metric(app, "cache_applier_passes_total");
  await expect
    .poll(() => metric(app, "cache_applier_passes_total"), { timeout: 5000 })
    .toBeGreaterThanOrEqual(from + n);
};
const applierSessions = async () =>
  (
    await db.sql<{ pid: number }[]>`SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'dellstore-orders-applier'`
  ).map((row) => row.pid);
const killAppliers = () => db.sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
  WHERE datname = current_database() AND application_name = 'dellstore-orders-applier'`;
const insert = (customerId: number) =>
  db.sql`INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount) VALUES ('2004-06-06', ${customerId}, 1, 0.08, 1.08)`;
const up = (app: TestApp) =>
  expect.poll(() => health(app), { timeout: 10_000 }).toMatchObject({ cache: "up", changes: "up" });

/** Reads each customer's count twice (the second a hit), and returns the counts. */
async function warm(app: TestApp, customerIds: number[]): Promise<number[]> {
  const counts = [];
  for (const id of customerIds) {
    counts.push(await count(app, id));
    expect(await count(app, id)).toBe(counts.at(-1));
  }
  return counts;
}

/** Whether the next read of each customer is a hit, and the counts read. */
async function hitsOf(app: TestApp, customerIds: number[]): Promise<{ hit: boolean; count: number }[]> {
  const results = [];
  for (const id of customerIds) {
    const before = await hits(app);
    const value = await count(app, id);
    results.push({ hit: (await hits(app)) === before + 1, count: value });
  }
  return results;
}

describe("losing the applier's session", () => {
  it("with no order written meanwhile, retires nothing", async () => {
    await up(server);
    await warm(server, [60, 61]);
    const [epochBefore, retiredBefore] = [await epoch(), await metric(server, "cache_retire_all_total")];
    const killed = await applierSessions();
    await killAppliers();
    await expect.poll(async () => (await applierSessions()).some((pid) => !killed.includes(pid))).toBe(true);
    await passes(server, 2);
    expect((await hitsOf(server, [60, 61])).map((r) => r.hit)).toEqual([true, true]);
    expect(await epoch()).toBe(epochBefore);
    expect(await metric(server, "cache_retire_all_total")).toBe(retiredBefore);
  });

  it("with orders written meanwhile, replays exactly those: nothing stale, the rest still cached", async () => {
    await up(server);
    const [a] = await warm(server, [62, 63]);
    const epochBefore = await epoch();
    const killed = await applierSessions();
    await killAppliers();
    await insert(62); // nobody hears this one's notification
    await expect.poll(async () => (await applierSessions()).some((pid) => !killed.includes(pid))).toBe(true);
    await passes(server, 2);
    const [written, untouched] = await hitsOf(server, [62, 63]);
    expect(written).toEqual({ hit: false, count: (a ?? 0) + 1 });
    expect(untouched?.hit).toBe(true);
    expect(await epoch()).toBe(epochBefore);
  });
});

describe("restarting", () => {
  it("keeps what the previous process cached, and replays what was written while none ran", async () => {
    await up(server);
    const [a, b] = await warm(server, [64, 65]);
    const epochBefore = await epoch();
    const first = await startTestApp(env());
    await up(first);
    await first.close();
    await insert(64); // while no second instance runs (the fixture's server still does)
    const second = await startTestApp(env());
    try {
      await up(second);
      expect(await hitsOf(second, [64, 65])).toEqual([
        { hit: false, count: (a ?? 0) + 1 },
        { hit: true, count: b },
      ]);
      expect(await epoch()).toBe(epochBefore);
      expect(await metric(second, "cache_retire_all_total")).toBe(0);
    } finally {
      await second.close();
    }
  });

  it("that fails retires nothing", async () => {
    await up(server);
    await warm(server, [66]);
    const epochBefore = await epoch();
    const port = new URL(server.url).port;
    await expect(startTestApp({ ...env(), PORT: port })).rejects.toThrow(/EADDRINUSE/);
    expect((await hitsOf(server, [66]))[0]?.hit).toBe(true);
    expect(await epoch()).toBe(epochBefore);
  });
});

describe("a Valkey outage", () => {
  it("replays the invalidations it lost instead of retiring everything", async () => {
    await up(server);
    const [a, b] = await warm(server, [67, 68]);
    const epochBefore = await epoch();
    valkeyProxy.cut();
    try {
      await expect.poll(() => health(server), { interval: 2 }).toMatchObject({ cache: "down" });
      await insert(67); // its invalidation can't reach Valkey
      await expect.poll(() => count(server, 67)).toBe((a ?? 0) + 1);
    } finally {
      valkeyProxy.restore();
    }
    await up(server);
    expect(await hitsOf(server, [67, 68])).toEqual([
      { hit: false, count: (a ?? 0) + 1 },
      { hit: true, count: b },
    ]);
    expect(await count(server, 67)).toBe(await truth(67));
    expect(await epoch()).toBe(epochBefore);
  });
});

describe("the applier", () => {
  it("killed again and again while Valkey hangs comes back as one session, passing steadily", async () => {
    await up(server);
    valkeyProxy.stall();
    try {
      // An instance that can't reach the store doesn't lead (it steps down for one that can) and doesn't
      // stand for election; kill its sessions, and any it makes meanwhile, while Valkey hangs.
      await expect.poll(() => metric(server, "cache_applier"), { timeout: 5000 }).toBe(0);
      for (let round = 0; round < 3; round++) {
        const pids = await applierSessions();
        await db.sql`SELECT pg_terminate_backend(pid) FROM unnest(${pids}::int[]) AS pid`;
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(await metric(server, "cache_applier")).toBe(0);
      }
    } finally {
      valkeyProxy.restore();
    }
    await up(server);
    // Steady: several passes later, still one session, the cache in use.
    await passes(server, 3);
    expect(await health(server)).toMatchObject({ changes: "up", cache: "up" });
    expect(await applierSessions()).toHaveLength(1);
    expect(await metric(server, "cache_applier")).toBe(1);
  });
});

describe("invalidating only what may have changed", () => {
  it("a write refused for an unknown customer invalidates nothing", async () => {
    await up(server);
    await warm(server, [69]);
    const before = await metric(server, "cache_invalidations_total");
    const res = await fetch(`${server.url}/add/`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ customerid: 987654, netamount: 1, tax: 0.08 }),
    });
    expect(res.status).toBe(404);
    const bad = await fetch(`${server.url}/add/`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ customerid: 69, netamount: -1, tax: 0.08 }),
    });
    expect(bad.status).toBe(422);
    expect(await metric(server, "cache_invalidations_total")).toBe(before);
    expect((await hitsOf(server, [69]))[0]?.hit).toBe(true);
  });

  it("API writes notify nobody (their writer bumps their tags); a psql write wakes the applier", async () => {
    await up(server);
    await warm(server, [70]);
    const wakes = await metric(server, "cache_wakes_total");
    for (let wave = 0; wave < 5; wave++) {
      const orders = await Promise.all(
        Array.from({ length: 4 }, () =>
          server.client.orders.add.mutate({ customerId: 70, netAmount: "1.00", tax: "0.08" }),
        ),
      );
      expect(orders.every((order) => order.customerId === 70)).toBe(true);
    }
    expect(await count(server, 70)).toBe(await truth(70));
    await insert(70);
    await expect.poll(() => metric(server, "cache_wakes_total")).toBe(wakes + 1); // the psql write's alone
    await expect.poll(() => count(server, 70)).toBe(await truth(70));
    await passes(server, 2);
    expect(await metric(server, "cache_wakes_total")).toBe(wakes + 1);
  });

  it("reads of customers that don't exist leave nothing in Valkey that outlives their entries", async () => {
    await up(server);
    const ttl = 120; // CACHE_TTL_SECONDS's default
    for (let id = 900_001; id <= 900_200; id++) expect(await count(server, id)).toBe(0);
    const keys = (await valkey.keys(`${prefix}:*`)).filter((key) => /:9\d{5}\b|customerId":9\d{5}/.test(key));
    expect(keys.length).toBe(400); // an entry and a tag per id
    const ttls = await Promise.all(keys.map((key) => valkey.ttl(key)));
    expect(ttls.filter((t) => t > ttl || t < 0)).toEqual([]);
  });
});
