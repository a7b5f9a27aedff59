// PostgreSQL cut off or hung behind a real TCP proxy: the service answers 503
// within its timeout (a write whose statement may have reached PostgreSQL:
// 504, its outcome unknown), writes nothing, and recovers by itself.
import { describe, expect, it } from "vitest";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { useProxy } from "./support/tcp-proxy.ts";

const db = useTestDatabase("seeded");
const proxy = useProxy(() => db.url, 5432);

const timeoutSeconds = 2;
const server = useApp(() => ({ DATABASE_URL: proxy.url(db.url), DATABASE_TIMEOUT_SECONDS: String(timeoutSeconds) }));

const timed = async (request: () => Promise<Response>) => {
  const started = performance.now();
  const res = await request();
  return { res, body: await res.json(), ms: performance.now() - started };
};
const orderCount = async () => (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders`)[0]?.n;
const addOrder = () =>
  fetch(`${server.url}/add/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: '{"customerid":1,"netamount":1,"tax":1}',
  });

describe.each([
  ["cut", 1001],
  ["stalled", 1002],
] as const)("with PostgreSQL %s", (failure, uncachedCustomer) => {
  it("answers 503 within the timeout on every route, writes nothing, and recovers by itself", async () => {
    expect((await fetch(`${server.url}/count`)).status).toBe(200);
    const before = await orderCount();
    if (failure === "cut") proxy.cut();
    else proxy.stall();
    try {
      // A count the cache hasn't seen (a cached one would rightly still answer).
      const count = await timed(() => fetch(`${server.url}/count?customerid=${uncachedCustomer}`));
      expect(count.res.status).toBe(503);
      expect(count.body).toEqual({ detail: "The database is unavailable; try again shortly." });
      expect(count.ms).toBeLessThan(timeoutSeconds * 1000 + 1500);

      // The connection broke or hung with the statement possibly sent, and PostgreSQL can't be asked: unknown.
      const add = await timed(addOrder);
      expect(add.res.status).toBe(504);
      expect(add.ms).toBeLessThan(timeoutSeconds * 1000 + 1500);

      const trpc = await server.client.customers.summary.query({ customerId: uncachedCustomer }).catch((e) => e);
      expect(trpc.data).toMatchObject({ code: "SERVICE_UNAVAILABLE", httpStatus: 503 });
      expect(JSON.stringify(trpc.shape)).not.toMatch(/postgres:|127\.0\.0\.1|stack/);

      const health = await timed(() => fetch(`${server.url}/health`));
      expect(health.res.status).toBe(503);
      // The memory cache is fine: only PostgreSQL is down.
      expect(health.body).toMatchObject({ status: "unavailable", database: "down", cache: "memory" });
    } finally {
      proxy.restore();
    }
    expect(await orderCount()).toBe(before);
    // Recovery: no restart, no manual step; a stalled pool may take one timeout to clear.
    await expect.poll(async () => (await fetch(`${server.url}/count`)).status, { timeout: 15_000 }).toBe(200);
    expect((await addOrder()).status).toBe(200);
    expect(await orderCount()).toBe((before ?? 0) + 1);
  });
});
