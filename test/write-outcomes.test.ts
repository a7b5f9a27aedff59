// Every answer to a write is true (server/writes.ts): 503 only when the attempt
// stored nothing and never will; 504 when its outcome can't be known, and a
// retry with the same key then settles it to exactly one row. Also: the key's
// request is the one as sent (a retry after midnight is the same request),
// every POST /add/ answer names its key, and serialization failures and
// deadlocks are retried inside the server.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { connectPostgres, type DatabaseHandle } from "../db/client.ts";
import { generateDataset } from "../db/load/generate.ts";
import { startTestApp, type TestApp, useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { installFlakyOrders, removeFlakyOrders } from "./support/flaky-orders.ts";
import { type LocalPostgres, startLocalPostgres } from "./support/local-postgres.ts";

const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url, DATABASE_TIMEOUT_SECONDS: "2" }));

const post = (app: { url: string }, body: object, key?: string) =>
  fetch(`${app.url}/add/`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key === undefined ? {} : { "idempotency-key": key }) },
    body: JSON.stringify(body),
  });
/** Orders with this net amount after `afterId` (the seeded ones are 1 to 12,000). */
const rowsWithNet = async (sql: DatabaseHandle["sql"], net: string, afterId = 12000) =>
  (
    await (sql as NonNullable<typeof sql>)<{ n: number }[]>`
    SELECT count(*)::int AS n FROM orders WHERE netamount = ${net}::numeric AND orderid > ${afterId}`
  )[0]?.n;

describe("POST /add/", () => {
  it("names the write's key in every answer: the caller's, or one the server made", async () => {
    const given = await post(server, { customerid: 30, netamount: 1, tax: 1 }, "caller-key-1");
    expect([given.status, given.headers.get("idempotency-key")]).toEqual([200, "caller-key-1"]);
    const made = await post(server, { customerid: 30, netamount: 2, tax: 1 });
    expect(made.status).toBe(200);
    const key = made.headers.get("idempotency-key") ?? "";
    expect(key).toMatch(/^[0-9a-f-]{36}$/);
    // That key is the write's: resent with it, the same body is the same order.
    const again = await post(server, { customerid: 30, netamount: 2, tax: 1 }, key);
    expect(again.status).toBe(200);
    expect(await rowsWithNet(db.handle.sql, "2.00")).toBe(1);
    const refused = await post(server, { customerid: 30, netamount: -1, tax: 1 });
    expect(refused.status).toBe(422);
    expect(refused.headers.get("idempotency-key")).toMatch(/^[0-9a-f-]{36}$/);
    const unknown = await post(server, { customerid: 987654, netamount: 1, tax: 1 }, "caller-key-2");
    expect([unknown.status, unknown.headers.get("idempotency-key")]).toEqual([404, "caller-key-2"]);
  });
});

describe("a retry after midnight", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("of an order sent without a date is the same request: the first order, not a conflict", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: new Date(2026, 10, 29, 23, 59, 50), shouldAdvanceTime: true });
    const body = { customerid: 31, netamount: "31.31", tax: 1 };
    const first = await server.client.orders.add.mutate({
      customerId: 31,
      netAmount: "31.31",
      tax: 1,
      idempotencyKey: "before-midnight",
    });
    expect(first.orderDate).toBe("2026-11-29");
    const rest = await post(server, body, "rest-before-midnight");
    expect(rest.status).toBe(200);
    vi.setSystemTime(new Date(2026, 10, 30, 0, 0, 10));
    const retried = await server.client.orders.add.mutate({
      customerId: 31,
      netAmount: "31.31",
      tax: 1,
      idempotencyKey: "before-midnight",
    });
    expect(retried).toEqual(first);
    const restRetried = await post(server, body, "rest-before-midnight");
    expect(restRetried.status).toBe(200);
    expect(await rowsWithNet(db.handle.sql, "31.31")).toBe(2); // one per key
  });
});

describe("an app server whose clock disagrees with the database's", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  // Its deadlines are its own: PostgreSQL is told the time left, never a time on the app's clock.
  for (const [label, skewMs] of [
    ["an hour behind", -3_600_000],
    ["an hour ahead", 3_600_000],
  ] as const) {
    it(`stores its writes when ${label}`, async () => {
      vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + skewMs, shouldAdvanceTime: true });
      const net = skewMs < 0 ? "41.41" : "42.42";
      const order = await server.client.orders.add.mutate({ customerId: 41, netAmount: net, tax: 1 });
      expect(order.netAmount).toBe(net);
      expect(await rowsWithNet(db.handle.sql, net)).toBe(1);
    });
  }
});

describe("serialization failures and deadlocks", () => {
  beforeAll(() => installFlakyOrders(db.sql));
  afterAll(() => removeFlakyOrders(db.sql));

  it("are retried inside the server: two failed attempts, then one order", async () => {
    const res = await post(server, { customerid: 32, netamount: "777.77", tax: 1 });
    expect(res.status).toBe(200);
    expect(await rowsWithNet(db.handle.sql, "777.77")).toBe(1);
  });

  it("that never stop are answered 503 (PostgreSQL rolled each attempt back), not 500", async () => {
    const res = await post(server, { customerid: 32, netamount: "666.66", tax: 1 });
    expect(res.status).toBe(503);
    // What is promised is of this attempt, not of its key: a retry with it may still store the order.
    expect(await res.json()).toEqual({
      detail:
        "The database is unavailable: this attempt stored nothing, and never will; retry with the same Idempotency-Key (the order is stored at most once).",
    });
    expect(await rowsWithNet(db.handle.sql, "666.66")).toBe(0);
  });
});

describe("a commit whose acknowledgement a synchronous standby holds past the deadline", () => {
  let cluster: LocalPostgres;
  let database: DatabaseHandle;
  let app: TestApp;
  beforeAll(async () => {
    cluster = await startLocalPostgres();
    database = connectPostgres(cluster.url, { max: 2 });
    await database.migrate();
    await generateDataset(database.db, { customers: 50, orders: 0 });
    app = await startTestApp({ DATABASE_URL: cluster.url, DATABASE_TIMEOUT_SECONDS: "2" });
  });
  afterAll(async () => {
    await app?.close();
    await database?.close();
    await cluster?.remove();
  });

  it("is answered 504, never 503, and a retry with the same key settles it to exactly one row", async () => {
    const sql = database.sql as NonNullable<DatabaseHandle["sql"]>;
    const body = { customerid: 7, netamount: "55.55", tax: 1 };
    // A standby that never answers: every commit waits for it.
    await sql`ALTER SYSTEM SET synchronous_standby_names = 'nobody'`;
    await sql`SELECT pg_reload_conf()`;
    let first: Response;
    try {
      first = await post(app, body, "held-by-standby");
    } finally {
      await sql`ALTER SYSTEM RESET synchronous_standby_names`;
      await sql`SELECT pg_reload_conf()`;
    }
    expect(first.status).toBe(504);
    expect(first.headers.get("idempotency-key")).toBe("held-by-standby");
    expect(await first.json()).toEqual({ detail: expect.stringMatching(/retry with the same Idempotency-Key/) });
    // The standby answered (it was dropped): the commit completes. The client retries as told.
    const retried = await post(app, body, "held-by-standby");
    expect(retried.status).toBe(200);
    expect(await rowsWithNet(sql, "55.55", 0)).toBe(1);
  });
});
