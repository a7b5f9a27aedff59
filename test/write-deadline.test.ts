// Every answer to a write is true: not when another session holds a lock past
// the deadline, not when PostgreSQL hangs behind a real TCP proxy and the
// stalled statements arrive late, not when more writes queue for a pool
// connection than the pool has, not when every PostgreSQL process is stopped.
// A write answered 504 (outcome unknown) is retried with the key its answer
// named, as clients do, until it is answered 200 or 503. Every write has its
// own net amount, so afterwards each one answered 503 must be absent and each
// one answered 200 present exactly once.
import { setTimeout as delay } from "node:timers/promises";
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectPostgres, type DatabaseHandle } from "../db/client.ts";
import { generateDataset } from "../db/load/generate.ts";
import { startTestApp, type TestApp, useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { type LocalPostgres, startLocalPostgres } from "./support/local-postgres.ts";
import { useProxy } from "./support/tcp-proxy.ts";

const timeoutSeconds = 2;
// The scenarios below are sized for a pool of ten (the default depends on the host's cores).
const limits = { DATABASE_TIMEOUT_SECONDS: String(timeoutSeconds), DATABASE_POOL_SIZE: "10" };
const db = useTestDatabase("seeded");
const proxy = useProxy(() => db.url, 5432);
const direct = useApp(() => ({ DATABASE_URL: db.url, ...limits }));
const proxied = useApp(() => ({ DATABASE_URL: proxy.url(db.url), ...limits }));

interface Outcome {
  net: string;
  status: number;
  /** The Idempotency-Key its answer named. */
  key: string;
}

let nextNet = 5000;
/** POST /add/ for `customer`, with a net amount no other write of this file uses (or `net`, resent with `key`). */
async function write(url: string, customer: number, resend?: { net: string; key: string }): Promise<Outcome> {
  const net = resend?.net ?? `${nextNet++}.37`;
  const res = await fetch(`${url}/add/`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(resend ? { "idempotency-key": resend.key } : {}) },
    body: JSON.stringify({ customerid: customer, netamount: net, tax: "1.00" }),
  });
  await res.arrayBuffer();
  const key = res.headers.get("idempotency-key");
  expect(key).toBeTruthy(); // every answer names its key
  return { net, status: res.status, key: key ?? "" };
}

/** Retries each write answered 504 with its key, as a client does, until it is answered 200 or 503. */
async function settleUnknown(url: string, customer: number, outcomes: Outcome[]): Promise<Outcome[]> {
  return Promise.all(
    outcomes.map(async (outcome) => {
      let settled = outcome;
      await expect
        .poll(
          async () => {
            if (settled.status === 504) settled = await write(url, customer, outcome);
            return settled.status;
          },
          { timeout: 15_000 },
        )
        .not.toBe(504);
      return settled;
    }),
  );
}

/**
 * Writes until one is answered 200, recording every outcome. Once one is, every
 * write held up before it has gone out (the pool's queue is first come, first served).
 */
async function writeUntilStored(url: string, customer: number, outcomes: Outcome[]): Promise<void> {
  await expect
    .poll(
      async () => {
        const outcome = await write(url, customer);
        outcomes.push(outcome);
        return outcome.status;
      },
      { timeout: 15_000 },
    )
    .toBe(200);
}

/** Each write answered 200 stored once, each answered otherwise stored nowhere. */
async function expectOnlyAcknowledgedStored(
  customer: number,
  outcomes: Outcome[],
  sql: postgres.Sql = db.sql,
): Promise<void> {
  const rows = await sql<{ net: string; n: number }[]>`
    SELECT netamount::text AS net, count(*)::int AS n FROM orders WHERE customerid = ${customer} GROUP BY netamount`;
  const stored = new Map(rows.map((row) => [row.net, row.n]));
  const wrong = outcomes.filter(({ net, status }) => (stored.get(net) ?? 0) !== (status === 200 ? 1 : 0));
  expect(wrong, `stored: ${JSON.stringify(rows)}`).toEqual([]);
  expect(outcomes.every(({ status }) => status === 200 || status === 503)).toBe(true);
  expect(new Set(outcomes.map(({ key }) => key)).size).toBe(outcomes.length);
}

/** Waits until no connection of the app to this database is running or holding a transaction. */
async function expectAppConnectionsIdle(sql: postgres.Sql = db.sql): Promise<void> {
  await expect
    .poll(
      async () =>
        (
          await sql<{ n: number }[]>`
            SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND backend_type = 'client backend'
              AND pid <> pg_backend_pid() AND state IS DISTINCT FROM 'idle'`
        )[0]?.n,
      { timeout: 15_000 },
    )
    .toBe(0);
}

describe("a write attempt answered 503 stored nothing, and one answered 504 settles to one row or none", () => {
  it("is not stored when another session holds LOCK orders past its deadline, even queued behind a full pool", async () => {
    const customer = 11;
    const holder = await db.sql.reserve();
    const outcomes: Promise<Outcome>[] = [];
    try {
      await holder`BEGIN`;
      await holder`LOCK orders`;
      // 30 at once (three times the pool): the last ones wait for a connection, then for the lock.
      for (let i = 0; i < 30; i++) outcomes.push(write(direct.url, customer));
      // Some more while the lock is held, whose deadlines reach past its release.
      for (let i = 0; i < 6; i++) {
        await delay(300);
        outcomes.push(write(direct.url, customer));
      }
      // Held until the 30 are answered (none can commit before), so each one's deadline passes under the
      // lock however late a loaded machine delivered it; and at least as long as their deadlines take.
      await Promise.all([delay(timeoutSeconds * 1000 + 600 - 6 * 300), ...outcomes.slice(0, 30)]);
    } finally {
      await holder`COMMIT`;
      holder.release();
    }
    const answered = await Promise.all(outcomes);
    expect(answered.filter((o) => o.status !== 200).length).toBeGreaterThanOrEqual(30);
    const settled = await settleUnknown(direct.url, customer, answered);
    // Afterwards the service works: a write now is stored.
    settled.push(await write(direct.url, customer));
    await expectAppConnectionsIdle();

    expect(settled.at(-1)?.status).toBe(200);
    await expectOnlyAcknowledgedStored(customer, settled);
  });

  it("is not stored when PostgreSQL hangs and its statements arrive after the deadline", async () => {
    const customer = 12;
    const settled = [await write(proxied.url, customer)];
    proxy.stall();
    let stalled: Outcome[];
    try {
      stalled = await Promise.all(Array.from({ length: 20 }, () => write(proxied.url, customer)));
      // Let the deadlines pass well behind the 503s before the statements reach PostgreSQL.
      await delay(500);
    } finally {
      proxy.restore();
    }
    // PostgreSQL could not be asked in time what became of them: unknown, said so.
    expect(stalled.map((o) => o.status)).toEqual(stalled.map(() => 504));
    settled.push(...(await settleUnknown(proxied.url, customer, stalled)));
    await writeUntilStored(proxied.url, customer, settled);
    await expectAppConnectionsIdle();

    expect(settled[0]?.status).toBe(200);
    await expectOnlyAcknowledgedStored(customer, settled);
  });
});

describe("on a PostgreSQL server whose processes are all stopped (SIGSTOP) for 2.5 s", () => {
  let cluster: LocalPostgres;
  let database: DatabaseHandle;
  let server: TestApp;
  beforeAll(async () => {
    cluster = await startLocalPostgres();
    database = connectPostgres(cluster.url, { max: 2 });
    await database.migrate();
    await generateDataset(database.db, { customers: 50, orders: 0 });
    server = await startTestApp({ DATABASE_URL: cluster.url, ...limits });
  });
  afterAll(async () => {
    await server?.close();
    await database?.close();
    await cluster?.remove();
  });

  it("no write answered 503 is stored, every one answered 200 is, once, and each 504 settles", async () => {
    const customer = 7;
    const outcomes: Promise<Outcome>[] = [];
    const writeEvery100ms = async (count: number) => {
      for (let i = 0; i < count; i++) {
        outcomes.push(write(server.url, customer));
        await delay(100);
      }
    };
    await writeEvery100ms(10);
    await cluster.signal("SIGSTOP");
    try {
      await writeEvery100ms(25);
    } finally {
      await cluster.signal("SIGCONT");
    }
    await writeEvery100ms(10);
    const answered = await Promise.all(outcomes);
    expect(answered.filter((o) => o.status !== 200).length).toBeGreaterThanOrEqual(5);
    const settled = await settleUnknown(server.url, customer, answered);
    await writeUntilStored(server.url, customer, settled);
    const sql = database.sql as postgres.Sql;
    await expectAppConnectionsIdle(sql);

    expect(settled.filter((o) => o.status === 200).length).toBeGreaterThanOrEqual(5);
    await expectOnlyAcknowledgedStored(customer, settled, sql);
  });
});
