// Hits of cached single GET queries are answered before Fastify and tRPC run,
// from the response cache: the same bytes as the normal path, an ETag, 304 for
// a matching If-None-Match, and never a response a write has retired.
import superjson from "superjson";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { startTestApp, useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { cachePrefix } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const env = () => ({ DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: cachePrefix() });
const server = useApp(env);
beforeAll(async () => {
  expect(await server.app.cache.ready(5000)).toBe(true);
});

const trpcUrl = (path: string, input?: unknown) =>
  `/trpc/${path}${input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(superjson.serialize(input)))}`}`;
const get = (path: string, headers: Record<string, string> = {}) => fetch(`${server.url}${path}`, { headers });
/** The cached count of customer 79, whom only no-store requests read. */
const peek79 = async () =>
  (
    await server.app.cache.lookup({
      procedure: "orders.count",
      input: { customerId: 79 },
      tags: ["orders:customer:79"],
    })
  ).payload;
const outcomes = () => server.logs.filter((l) => l.msg === "cache hit" || l.msg === "cache miss").map((l) => l.msg);

async function missThenHit(path: string) {
  server.logs.length = 0;
  const miss = await get(path);
  const hit = await get(path);
  expect(outcomes()).toEqual(["cache miss", "cache hit"]);
  return { miss, hit, missBody: await miss.text(), hitBody: await hit.text() };
}

describe("the HTTP fast path (the response cache)", () => {
  it.each([
    ["a tRPC query without input", trpcUrl("orders.count")],
    ["a tRPC query with input", trpcUrl("orders.count", { customerId: 70 })],
    ["another cached procedure", trpcUrl("customers.summary", { customerId: 71 })],
    ["the REST count", "/count?customerid=72"],
  ])("answers a hit of %s with the bytes the normal path sent", async (_, path) => {
    const { miss, hit, missBody, hitBody } = await missThenHit(path);
    expect(hit.status).toBe(200);
    expect(hitBody).toBe(missBody);
    for (const header of ["content-type", "vary"]) expect(hit.headers.get(header)).toBe(miss.headers.get(header));
    expect(hit.headers.get("etag")).toMatch(/^"[\w./-]+"$/);
  });

  it("answers 304 to a matching If-None-Match, and 200 with the new count once a write retired the entry", async () => {
    const path = "/count?customerid=73";
    await get(path);
    const first = await get(path);
    const etag = first.headers.get("etag") as string;
    const notModified = await get(path, { "if-none-match": etag });
    expect(notModified.status).toBe(304);
    expect(await notModified.text()).toBe("");
    const { count } = (await first.json()) as { count: number };
    await server.client.orders.add.mutate({ customerId: 73, netAmount: 1, tax: 0 });
    const changed = await get(path, { "if-none-match": etag });
    expect(changed.status).toBe(200);
    expect(await changed.json()).toEqual({ count: count + 1 });
    expect(changed.headers.get("etag") ?? "").not.toBe(etag);
  });

  it.each([
    ["the REST count", 74, "/count?customerid=74", (body: string) => (JSON.parse(body) as { count: number }).count],
    [
      "a tRPC query",
      75,
      trpcUrl("orders.count", { customerId: 75 }),
      (body: string) => (JSON.parse(body) as { result: { data: { json: { count: number } } } }).result.data.json.count,
    ],
  ])("answers the same URL, hit again after a write, with the new value (%s)", async (_, customerId, path, countOf) => {
    await get(path);
    const before = await (await get(path)).text();
    expect(await (await get(path)).text()).toBe(before); // the URL's response is kept now
    await server.client.orders.add.mutate({ customerId, netAmount: 1, tax: 0 });
    // Every answer from now on has the new count. Until one is a hit again (the miss that reloads it,
    // and again if the applier's pass retires the entry once more as it applies the same write).
    const counts: number[] = [];
    await expect
      .poll(
        async () => {
          counts.push(countOf(await (await get(path)).text()));
          return outcomes().at(-1);
        },
        { timeout: 5000 },
      )
      .toBe("cache hit");
    expect(new Set(counts)).toEqual(new Set([countOf(before) + 1]));
  });

  it.each([
    ["the REST count", "/count?customerid=76"],
    ["a tRPC query", trpcUrl("orders.count", { customerId: 77 })],
  ])(
    "answers a miss of %s that comes while another request loads it with that load's answer, as a hit",
    async (_, path) => {
      server.logs.length = 0;
      const misses = () => server.logs.filter((l) => l.msg === "cache miss");
      // Not an array: postgres.js would wait for its members inside the transaction.
      const { first, second } = await db.sql.begin(async (tx) => {
        // The first request's load waits for this transaction.
        await tx`LOCK TABLE customer_order_stats IN ACCESS EXCLUSIVE MODE`;
        const first = get(path);
        await expect.poll(() => misses().length, { interval: 5 }).toBe(1);
        const second = get(path);
        await expect.poll(() => misses().length, { interval: 5 }).toBe(2);
        return { first, second };
      });
      // The second joined the first's load: the database was read once.
      expect(misses().map((l) => l.joined === true)).toEqual([false, true]);
      const [firstBody, secondBody] = [await (await first).text(), await (await second).text()];
      expect(secondBody).toBe(firstBody);
      for (const header of ["content-type", "vary", "etag"]) {
        expect((await second).headers.get(header)).toBe((await first).headers.get(header));
      }
      expect(outcomes()).toEqual(["cache miss", "cache miss"]);
    },
  );

  it("answers a request that joined a load within its own budget, when the load outlasts it", async () => {
    const app = await startTestApp({ ...env(), DATABASE_TIMEOUT_SECONDS: "1" });
    try {
      const misses = () => app.logs.filter((l) => l.msg === "cache miss");
      const url = `${app.url}/count?customerid=78`;
      await db.sql.begin(async (tx) => {
        // Held past both requests' budgets: each must answer while it is still held.
        await tx`LOCK TABLE customer_order_stats IN ACCESS EXCLUSIVE MODE`;
        // The budget is a deadline the caller is promised (DATABASE_TIMEOUT_SECONDS), not a speed: a
        // joiner that waited its whole budget on the load and then got a new one answered after two.
        const answered = async (sent: number, response: Promise<Response>) => {
          const { status } = await response;
          return { status, withinBudget: Date.now() - sent < 1500 };
        };
        const first = answered(Date.now(), fetch(url));
        await expect.poll(() => misses().length, { interval: 5 }).toBe(1);
        const second = answered(Date.now(), fetch(url));
        await expect.poll(() => misses().length, { interval: 5 }).toBe(2);
        expect(misses()[1]?.joined).toBe(true);
        expect(await Promise.all([first, second])).toEqual([
          { status: 503, withinBudget: true },
          { status: 503, withinBudget: true },
        ]);
      });
    } finally {
      await app.close();
    }
  });

  it("leaves batches, invalid input and Cache-Control: no-store to the normal path", async () => {
    await get(trpcUrl("orders.count", { customerId: 74 }));
    server.logs.length = 0;
    const batch = await get(
      `/trpc/orders.count?batch=1&input=${encodeURIComponent(JSON.stringify({ 0: { json: { customerId: 74 } } }))}`,
    );
    expect(batch.status).toBe(200);
    expect(batch.headers.get("etag")).toBeNull();
    const invalid = await get(trpcUrl("orders.count", { customerId: -1 }));
    expect(invalid.status).toBe(400);
    const uncached = await get(trpcUrl("orders.count", { customerId: 79 }), { "cache-control": "no-store" });
    expect(uncached.headers.get("etag")).toBeNull();
    expect(outcomes()).toEqual(["cache hit", "cache miss"]); // the batch hit through tRPC; no-store read the database
    expect(await peek79()).toBeUndefined();
    await get("/count?customerid=79", { "cache-control": "no-store" });
    expect(await peek79()).toBeUndefined();
  });
});
