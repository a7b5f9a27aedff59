// How a change travels from COMMIT to every cache (server/cache/applier.ts),
// at the edges an outside review found in the bookkeeping it replaced: a
// write acknowledged while a store recovery is under way, instances that share
// an application_name, a change touching hundreds of tags, a session left idle
// in transaction, a multi-statement transaction, and an applier killed.
// Real PostgreSQL and Valkey, with TCP proxies to cut them.
import { describe, expect, inject, it } from "vitest";
import { startTestApp, type TestApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { useFixture } from "./support/fixture.ts";
import { run } from "./support/run.ts";
import { type ServerProcess, shippedServer, startServerProcess } from "./support/server-process.ts";
import { useProxy } from "./support/tcp-proxy.ts";
import { cachePrefix } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const valkeyProxy = useProxy(() => inject("valkeyUrl"), 6379);

/** Holds the next store recovery after it has read the change log, until released. */
class RecoveryGate {
  private armed = false;
  private arrive = () => {};
  private release = () => {};
  arrived = Promise.resolve();
  private released = Promise.resolve();

  arm(): void {
    this.armed = true;
    this.arrived = new Promise((resolve) => {
      this.arrive = resolve;
    });
    this.released = new Promise((resolve) => {
      this.release = resolve;
    });
  }

  open(): void {
    this.release();
  }

  readonly hook = async () => {
    if (!this.armed) return;
    this.armed = false;
    this.arrive();
    await this.released;
  };
}
const gate = new RecoveryGate();

const server = useFixture(
  () =>
    startTestApp(
      { DATABASE_URL: db.url, VALKEY_URL: valkeyProxy.url(inject("valkeyUrl")), CACHE_PREFIX: cachePrefix() },
      { applier: { afterReplayRead: gate.hook } },
    ),
  (app) => app.close(),
);

const count = async (app: TestApp | ServerProcess, customerId: number) => {
  const res = await fetch(`${app.url}/count?customerid=${customerId}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { count: number }).count;
};
const truth = async (customerId: number) =>
  (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders WHERE customerid = ${customerId}`)[0]?.n ?? 0;
const metric = async (app: TestApp | ServerProcess, name: string, labels = "") => {
  const text = await (await fetch(`${app.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return Number(line?.split(" ")[1] ?? 0);
};
const hits = (app: TestApp) => metric(app, "cache_requests_total", '{procedure="orders.count",result="hit"}');
const health = async (app: TestApp | ServerProcess) =>
  (await (await fetch(`${app.url}/health`)).json()) as Record<string, string>;
const up = (app: TestApp | ServerProcess) =>
  expect.poll(() => health(app), { timeout: 10_000 }).toMatchObject({ cache: "up", changes: "up" });
const insertSql = (customerId: number) =>
  `INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount) VALUES ('2004-07-07', ${customerId}, 1, 0.08, 1.08)`;
const post = (app: TestApp | ServerProcess, customerId: number) =>
  fetch(`${app.url}/add/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ customerid: customerId, netamount: 1, tax: 0.08 }),
  });

/** Waits until the cache is down (Valkey is cut): a read of `customerId` trips the breaker. */
const cacheDown = (app: TestApp, customerId: number) =>
  expect
    .poll(async () => {
      await count(app, customerId);
      return (await health(app)).cache;
    })
    .toBe("down");

/** Reads twice, so the next read is a hit; returns the count. */
async function warm(app: TestApp, customerId: number): Promise<number> {
  const value = await count(app, customerId);
  expect(await count(app, customerId)).toBe(value);
  return value;
}

async function isHit(app: TestApp, customerId: number): Promise<boolean> {
  const before = await hits(app);
  await count(app, customerId);
  return (await hits(app)) === before + 1;
}

describe("a write acknowledged while the store recovers", () => {
  it("is never hidden by the entry it replaced, though the recovery had read the log before it committed", async () => {
    await up(server);
    const customer = 80;
    const before = await warm(server, customer);
    valkeyProxy.cut();
    try {
      await cacheDown(server, customer);
      gate.arm();
    } finally {
      valkeyProxy.restore();
    }
    await gate.arrived; // the recovery has read the change log; it has not reopened the cache
    const res = await post(server, customer);
    expect(res.status).toBe(200); // acknowledged during the recovery
    gate.open();
    await up(server);
    expect(await count(server, customer)).toBe(before + 1);
  });
});

describe("a change naming hundreds of tags", () => {
  it("invalidates those, not everything, even replayed after an outage", async () => {
    await up(server);
    const bystander = 90;
    await warm(server, bystander);
    const retired = await metric(server, "cache_retire_all_total");
    valkeyProxy.cut();
    try {
      await cacheDown(server, bystander);
      // 600 customers in one transaction, in statements of 50 (each names its customers, not the epoch).
      await db.sql.begin(async (tx) => {
        for (let first = 1000; first < 1600; first += 50) {
          await tx`INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount)
            SELECT '2004-09-09', c, 1, 0.08, 1.08 FROM generate_series(${first}::int, ${first + 49}::int) AS c`;
        }
      });
    } finally {
      valkeyProxy.restore();
    }
    await up(server);
    expect(await isHit(server, bystander)).toBe(true);
    expect(await metric(server, "cache_retire_all_total")).toBe(retired);
    expect(await count(server, 1234)).toBe(await truth(1234));
  });
});

describe("a multi-statement transaction", () => {
  it("reaches the cache whole: every customer it touched", async () => {
    await up(server);
    const [a, b] = [await warm(server, 97), await warm(server, 98)];
    const result = await run("psql", [db.url, "-qc", `BEGIN; ${insertSql(97)}; ${insertSql(98)}; COMMIT;`]);
    expect(result.code, result.stderr).toBe(0);
    await expect.poll(() => count(server, 97), { timeout: 2000 }).toBe(a + 1);
    await expect.poll(() => count(server, 98), { timeout: 2000 }).toBe(b + 1);
  });
});

describe("a session left idle in transaction", () => {
  it("neither stalls invalidation nor keeps the change log from being pruned", async () => {
    await up(server);
    const idle = await db.sql.reserve();
    try {
      await idle`BEGIN`;
      await idle.unsafe(insertSql(95)); // holds a transaction id: every snapshot's xmin stays behind it
      // Many changes committed after it (as minutes of writes would be), all of them applied once.
      await db.sql`INSERT INTO cache.change_log (tags)
        SELECT ARRAY['orders:customer:999999'] FROM generate_series(1, 200000)`;
      const outages = await metric(server, "cache_changes_outages_total");
      // What every applier has applied is pruned, the idle transaction notwithstanding.
      await expect
        .poll(async () => (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM cache.change_log`)[0]?.n, {
          timeout: 15_000,
        })
        .toBeLessThan(100);
      for (let round = 0; round < 5; round++) {
        const value = await warm(server, 96);
        const result = await run("psql", [db.url, "-qc", insertSql(96)]);
        expect(result.code, result.stderr).toBe(0);
        await expect.poll(() => count(server, 96), { interval: 5, timeout: 2000 }).toBe(value + 1);
      }
      expect(await metric(server, "cache_changes_outages_total")).toBe(outages);
      expect(await health(server)).toMatchObject({ cache: "up", changes: "up" });
    } finally {
      await idle`ROLLBACK`;
      idle.release();
    }
  });
});

describe("instances whose connections share one application_name", () => {
  it("each see the others' writes (nothing tells writes apart by name)", async () => {
    const url = new URL(db.url);
    url.searchParams.set("application_name", "same-name-everywhere");
    // No VALKEY_URL: each has a cache of its own, which only the change log can keep right.
    const [a, b] = await Promise.all([
      startTestApp({ DATABASE_URL: url.toString() }),
      startTestApp({ DATABASE_URL: url.toString() }),
    ]);
    try {
      const listening = (app: TestApp) =>
        expect.poll(() => health(app), { timeout: 10_000 }).toMatchObject({ cache: "memory", changes: "up" });
      await Promise.all([listening(a), listening(b)]);
      const before = await warm(b, 85);
      expect((await post(a, 85)).status).toBe(200);
      await expect.poll(() => count(b, 85), { interval: 5, timeout: 2000 }).toBe(before + 1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe("the applier killed (SIGKILL)", () => {
  it("is replaced by another instance, which applies a psql write within the takeover bound", async () => {
    const env = { DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: cachePrefix() };
    const start = () => startServerProcess(env, shippedServer);
    const servers = await Promise.all([start(), start()]);
    try {
      await Promise.all(servers.map(up));
      const roles = await Promise.all(servers.map((s) => metric(s, "cache_applier")));
      expect(roles.sort()).toEqual([0, 1]);
      const [applier, survivor] = (roles[0] === 1 ? servers : [...servers].reverse()) as [ServerProcess, ServerProcess];
      const before = await count(survivor, 86);
      expect(await count(survivor, 86)).toBe(before);
      await applier.stop("SIGKILL");
      const result = await run("psql", [db.url, "-qc", insertSql(86)]);
      expect(result.code, result.stderr).toBe(0);
      const written = performance.now();
      await expect.poll(() => count(survivor, 86), { interval: 5, timeout: 3000 }).toBe(before + 1);
      const seenAfterMs = performance.now() - written;
      console.log(
        `applier killed: a psql write was seen through the other instance after ${seenAfterMs.toFixed(0)} ms`,
      );
      expect(seenAfterMs).toBeLessThan(1000); // the takeover bound: an election (250 ms) and a pass
      expect(await metric(survivor, "cache_applier")).toBe(1);
    } finally {
      await Promise.all(
        servers.map((s) => (s.child.exitCode === null && s.child.signalCode === null ? s.stop("SIGKILL") : null)),
      );
    }
  });
});
