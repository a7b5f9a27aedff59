// Read replicas: which replica may serve a read, checked against a real
// streaming replica (pg_basebackup -R) of a PostgreSQL server of the test's own.
import { Writable } from "node:stream";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { compareLsn, formatLsn, isLsn, parseLsn } from "../db/lsn.ts";
import { ReplicaSet, type ReplicaState } from "../db/replicas.ts";
import { createLogger } from "../server/logger.ts";
import { type LocalPostgres, startLocalPostgres } from "./support/local-postgres.ts";
import { type StreamingReplica, startReplica } from "./support/replica.ts";
import { freePort } from "./support/server-process.ts";

describe("WAL positions", () => {
  it.each([
    ["0/16B3748", "0/16B37A0", -1],
    ["0/16B37A0", "0/16B3748", 1],
    ["0/F", "0/10", -1], // as text "0/F" sorts after "0/10"
    ["1/0", "0/FFFFFFFF", 1], // the high half counts first
    ["16/B374D848", "16/b374d848", 0],
    ["0/0", "0/0", 0],
  ])("compares %s with %s: %i", (a, b, order) => {
    expect(compareLsn(a, b)).toBe(order);
  });

  it("reads and writes them as PostgreSQL does", () => {
    expect(parseLsn("16/B374D848")).toBe(0x16b374d848n);
    expect(formatLsn(0x16b374d848n)).toBe("16/B374D848");
    expect(formatLsn(parseLsn("0/0"))).toBe("0/0");
    expect(formatLsn(parseLsn("FFFFFFFF/FFFFFFFF"))).toBe("FFFFFFFF/FFFFFFFF");
  });

  it.each(["", "0", "0/", "/0", "x/1", "1/2/3", "123456789/0", " 0/1", "0/1 ", "-1/0", "0x1/0"])(
    "refuses %j",
    (text) => {
      expect(isLsn(text)).toBe(false);
      expect(() => parseLsn(text)).toThrow(RangeError);
    },
  );
});

/** Waits until `check` holds, checking every 20 ms; fails saying what it waited for. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return performance.now() - started;
}

const password = "s3cret-replica-password";
const maxLagMs = 1000;

describe("a replica set over a real streaming replica", () => {
  let primary: LocalPostgres;
  let replica: StreamingReplica;
  let set: ReplicaSet;
  let writer: postgres.Sql;
  const logs: string[] = [];
  const changes: ReplicaState[] = [];
  const only = () => set.state()[0] as ReplicaState;

  /** A committed insert on the primary, and a WAL position at or past its commit. */
  async function write(): Promise<{ value: number; lsn: string }> {
    const [row] = await writer<{ value: number }[]>`INSERT INTO t DEFAULT VALUES RETURNING value`;
    const [{ lsn } = { lsn: "" }] = await writer<{ lsn: string }[]>`SELECT pg_current_wal_lsn()::text AS lsn`;
    return { value: row?.value ?? -1, lsn };
  }

  beforeAll(async () => {
    primary = await startLocalPostgres({ password });
    writer = postgres(primary.url, { max: 1, onnotice: () => {} });
    await writer`CREATE TABLE t (value serial PRIMARY KEY)`;
    replica = await startReplica(primary.url);
    const destination = new Writable({
      write(chunk, _encoding, done) {
        logs.push(String(chunk));
        done();
      },
    });
    set = new ReplicaSet({
      primaryUrl: primary.url,
      replicaUrls: [replica.url],
      maxLagMs,
      log: createLogger("info", destination),
      onChange: (state) => changes.push(state),
      pool: { max: 2 },
      maxRetryMs: 800,
    });
  });

  afterAll(async () => {
    await set?.close();
    await writer?.end();
    await replica?.close();
    await primary?.remove();
  });

  it("sees the replica catch up, and hands it out for what it has replayed", async () => {
    await until("the replica is up", () => only().status === "up", 10_000);
    const { value, lsn } = await write();
    const chosen = await set.choose(lsn, 5000);
    expect(chosen).toBeDefined();
    expect(compareLsn(chosen?.replayLsn ?? "0/0", lsn)).toBeGreaterThanOrEqual(0);
    // The position was observed before this read began: the read sees the write.
    const rows = await (chosen as NonNullable<typeof chosen>).sql`SELECT 1 FROM t WHERE value = ${value}`;
    expect(rows).toHaveLength(1);
    expect(only()).toMatchObject({ name: expect.stringMatching(/^127\.0\.0\.1:\d+\/postgres$/), status: "up" });
  });

  it("doesn't count an idle primary's silence as lag", async () => {
    // With nothing committed, the time since the replica's last replayed commit grows; its lag must not.
    await write();
    await until("caught up", () => only().lagMs === 0, 5000);
    await new Promise((resolve) => setTimeout(resolve, maxLagMs + 300));
    // (not exactly 0: the primary writes a little WAL of its own now and then, replayed at once.)
    expect(only().status).toBe("up");
    expect(only().lagMs).toBeLessThan(250);
  });

  it("waits for a replica that hasn't replayed a write yet, up to the bound", async () => {
    await replica.setApplyDelay(300);
    try {
      const first = await write();
      // Observed before this write existed: no replica has replayed it.
      expect(await set.choose(first.lsn, 0)).toBeUndefined();
      const started = performance.now();
      const chosen = await set.choose(first.lsn, 5000);
      const waited = performance.now() - started;
      expect(chosen).toBeDefined();
      expect(waited).toBeGreaterThan(150);
      expect(
        await (chosen as NonNullable<typeof chosen>).sql`SELECT 1 FROM t WHERE value = ${first.value}`,
      ).toHaveLength(1);

      const second = await write();
      const gaveUpAt = performance.now();
      expect(await set.choose(second.lsn, 100)).toBeUndefined();
      const gaveUpAfter = performance.now() - gaveUpAt;
      expect(gaveUpAfter).toBeGreaterThanOrEqual(95);
      expect(gaveUpAfter).toBeLessThan(1000);
      // Reads that need no particular position still go to it: it is within the lag bound.
      expect(await set.choose(undefined, 0)).toBeDefined();
    } finally {
      await replica.setApplyDelay(0);
    }
  });

  it("skips a replica lagging beyond the bound, and takes it back once it catches up", async () => {
    await replica.setApplyDelay(maxLagMs * 3);
    try {
      await write();
      await until("the replica is lagging", () => only().status === "lagging", maxLagMs * 2 + 1000);
      expect(only().lagMs).toBeGreaterThan(maxLagMs);
      expect(only().reason).toMatch(/ms behind the primary, more than DATABASE_REPLICA_MAX_LAG_MS \(1000\)/);
      const asked = performance.now();
      // None up: no waiting, whatever the bound.
      expect(await set.choose(undefined, 2000)).toBeUndefined();
      expect(performance.now() - asked).toBeLessThan(50);
    } finally {
      await replica.setApplyDelay(0);
    }
    await until("the replica is up again", () => only().status === "up", 3000);
    expect(await set.choose(undefined, 0)).toBeDefined();
  });

  it("marks a stopped replica down at once, and uses it again when it's back", async () => {
    await until("up", () => only().status === "up", 3000);
    await replica.stop();
    const tookMs = await until("the replica is down", () => only().status === "down", 1000);
    // Its check connection closing says so; no timeout had to pass.
    expect(tookMs).toBeLessThan(500);
    expect(only()).toMatchObject({ replayLsn: undefined, lagMs: undefined, reason: expect.any(String) });
    const { lsn } = await write();
    const asked = performance.now();
    expect(await set.choose(lsn, 2000)).toBeUndefined();
    expect(await set.choose(undefined, 2000)).toBeUndefined();
    expect(performance.now() - asked).toBeLessThan(100);

    await replica.start();
    await until("the replica is up again", () => only().status === "up", 5000);
    const chosen = await set.choose(lsn, 2000);
    expect(chosen).toBeDefined();
    // Its read pool reconnects by itself.
    expect(await (chosen as NonNullable<typeof chosen>).sql`SELECT count(*)::int AS n FROM t`).toEqual([
      { n: expect.any(Number) },
    ]);
    expect(changes.map((change) => change.status)).toEqual(expect.arrayContaining(["up", "lagging", "down"]));
    expect(logs.join("")).toMatch(/read replica 127\.0\.0\.1:\d+\/postgres is down/);
  });

  it("never writes the password: not in a log line, not in its state", () => {
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.join("")).not.toContain(password);
    expect(JSON.stringify(changes)).not.toContain(password);
    expect(JSON.stringify(set.state())).not.toContain(password);
  });

  it("refuses what isn't a replica of the primary, and one that doesn't answer, without failing a read", async () => {
    const closedPort = await freePort();
    const others = new ReplicaSet({
      primaryUrl: primary.url,
      replicaUrls: [
        primary.url, // the primary itself: replays nothing
        inject("postgresUrl"), // another server altogether
        `postgres://postgres:${password}@127.0.0.1:${closedPort}/postgres`,
      ],
      maxLagMs,
      log: createLogger("silent"),
    });
    try {
      await until(
        "all three refused for what they are",
        () => {
          const [itself, another, nothing] = others.state();
          return (
            /is not replaying WAL/.test(itself?.reason ?? "") &&
            /replicates another server/.test(another?.reason ?? "") &&
            nothing?.status === "down" &&
            nothing.reason !== "not checked yet"
          );
        },
        5000,
      );
      const [itself, another, nothing] = others.state();
      expect(itself).toMatchObject({ status: "down", reason: expect.stringMatching(/is not replaying WAL/) });
      expect(another).toMatchObject({ status: "down", reason: expect.stringMatching(/replicates another server/) });
      expect(nothing).toMatchObject({ status: "down", reason: expect.stringMatching(/ECONNREFUSED/) });
      expect(JSON.stringify(others.state())).not.toContain(password);
      expect(await others.choose(undefined, 1000)).toBeUndefined();
      expect(await others.choose("0/0", 1000)).toBeUndefined();
    } finally {
      await others.close();
    }
  });
});
