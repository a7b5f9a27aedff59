// The response cache (server/http/response-cache.ts): a repeated GET of a
// cached query is answered from the bytes its first answer had, while the tags
// its read depended on keep their tokens; a write on any instance retires it;
// ETag and 304 from the kept bytes; batches, no-store, errors are never kept;
// the requests' varying headers are in the key; memory is bounded.
import superjson from "superjson";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { type KeptResponse, KeptResponses } from "../server/http/response-cache.ts";
import { startTestApp, type TestApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { useFixture } from "./support/fixture.ts";
import { cachePrefix } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const apps = useFixture(
  async () => {
    const env = { DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: cachePrefix() };
    const [a, b, withoutL1, inMemory] = await Promise.all([
      startTestApp(env),
      startTestApp(env),
      startTestApp({ ...env, L1_MAX_BYTES: "0" }), // checks a response's tokens in Valkey
      startTestApp({ DATABASE_URL: db.url }), // the in-process store
    ]);
    return { a, b, withoutL1, inMemory };
  },
  async (all) => {
    await Promise.all(Object.values(all).map((app) => app.close()));
  },
);
beforeAll(async () => {
  for (const app of Object.values(apps)) expect(await app.app.cache.ready(5000)).toBe(true);
  for (let waited = 0; !apps.a.app.cache.tagFeed?.live && waited < 5000; waited += 20) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(apps.a.app.cache.tagFeed?.live).toBe(true);
});

const trpcUrl = (path: string, input: unknown) =>
  `/trpc/${path}?input=${encodeURIComponent(JSON.stringify(superjson.serialize(input)))}`;
const get = (app: TestApp, path: string, headers: Record<string, string> = {}) =>
  fetch(`${app.url}${path}`, { headers });
/** Requests the response cache answered (before Fastify and tRPC). */
const responseHits = (app: TestApp) => app.logs.filter((l) => l.msg === "cache hit" && l.tier === "response").length;
const countOf = async (res: Response) => ((await res.json()) as { count: number }).count;

async function write(app: TestApp, customerId: number) {
  const res = await fetch(`${app.url}/add/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ customerid: customerId, netamount: 1, tax: 0 }),
  });
  expect(res.status).toBe(200); // acknowledged
}

/** Two requests for `path` on `app`: the miss that keeps the response, and a hit answered from it. */
async function kept(app: TestApp, path: string, headers: Record<string, string> = {}) {
  const miss = await get(app, path, headers);
  const missBody = Buffer.from(await miss.arrayBuffer());
  const hits = responseHits(app);
  const hit = await get(app, path, headers);
  const hitBody = Buffer.from(await hit.arrayBuffer());
  expect(responseHits(app)).toBe(hits + 1);
  return { miss, missBody, hit, hitBody };
}

describe("the response cache", () => {
  it.each([
    ["the REST count", "/count?customerid=21"],
    ["a tRPC query", trpcUrl("orders.count", { customerId: 22 })],
    ["a tRPC query answering superjson's types", trpcUrl("customers.summary", { customerId: 23 })],
  ])("answers a repeated GET of %s with the bytes its miss sent", async (_, path) => {
    const { miss, missBody, hit, hitBody } = await kept(apps.a, path);
    expect(hit.status).toBe(200);
    expect(hitBody.equals(missBody)).toBe(true);
    for (const header of ["content-type", "vary", "etag", "content-length"]) {
      expect(hit.headers.get(header)).toBe(miss.headers.get(header));
    }
  });

  it.each([
    ["with the in-process tier (its mirror and barrier)", "a", 24],
    ["without it (the tokens read from Valkey)", "withoutL1", 25],
  ] as const)("serves no response a write on another instance retired, %s", async (_, name, customerId) => {
    const reader = apps[name];
    const path = `/count?customerid=${customerId}`;
    const { hitBody } = await kept(reader, path);
    const before = (JSON.parse(hitBody.toString()) as { count: number }).count;
    await write(apps.b, customerId);
    // Every answer from now on has the new count, until one is kept and answered from the cache again (the
    // applier's pass may retire the entry once more as it applies the same write).
    const counts: number[] = [];
    const hits = responseHits(reader);
    await expect
      .poll(
        async () => {
          counts.push(await countOf(await get(reader, path)));
          return responseHits(reader) > hits;
        },
        { timeout: 5000 },
      )
      .toBe(true);
    expect(new Set(counts)).toEqual(new Set([before + 1]));
  });

  it("serves no response a write retired without Valkey either (the in-process store)", async () => {
    const app = apps.inMemory;
    const path = trpcUrl("orders.count", { customerId: 26 });
    const countIn = (body: Buffer) =>
      (JSON.parse(body.toString()) as { result: { data: { json: { count: number } } } }).result.data.json.count;
    const before = countIn((await kept(app, path)).hitBody);
    await write(app, 26);
    expect(countIn(Buffer.from(await (await get(app, path)).arrayBuffer()))).toBe(before + 1);
  });

  it("answers 304 to an If-None-Match naming its ETag (strong, weak or *), and 200 to another", async () => {
    const path = trpcUrl("orders.count", { customerId: 27 });
    const { hit } = await kept(apps.a, path);
    const etag = hit.headers.get("etag") ?? "";
    expect(etag).toMatch(/^"[\w-]+"$/);
    for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
      const res = await get(apps.a, path, { "if-none-match": ifNoneMatch });
      expect(res.status).toBe(304);
      expect(res.headers.get("etag")).toBe(etag);
      expect(res.headers.get("vary")).toBe(hit.headers.get("vary"));
      expect(await res.text()).toBe("");
    }
    const other = await get(apps.a, path, { "if-none-match": '"something-else"' });
    expect(other.status).toBe(200);
  });

  it("keeps no batch, no-store request or error", async () => {
    const app = apps.a;
    const batch = `/trpc/orders.count?batch=1&input=${encodeURIComponent(JSON.stringify({ 0: { json: { customerId: 28 } } }))}`;
    const missing = trpcUrl("customers.summary", { customerId: 2_000_000 });
    const hits = responseHits(app);
    for (let i = 0; i < 2; i++) {
      const batched = await get(app, batch);
      expect(batched.status).toBe(200);
      expect(batched.headers.get("etag")).toBeNull();
      await batched.arrayBuffer();
      const uncached = await get(app, "/count?customerid=28", { "cache-control": "no-store" });
      expect(uncached.headers.get("etag")).toBeNull();
      await uncached.arrayBuffer();
      const notFound = await get(app, missing);
      expect(notFound.status).toBe(404);
      expect(notFound.headers.get("etag")).toBeNull();
      await notFound.arrayBuffer();
    }
    expect(responseHits(app)).toBe(hits);
  });

  it("keeps a response per value of the headers that may vary it (Accept, Authorization)", async () => {
    const app = apps.a;
    const path = "/count?customerid=29";
    await kept(app, path);
    const variants: Record<string, string>[] = [{ accept: "application/json" }, { authorization: "Bearer someone" }];
    for (const headers of variants) {
      const hits = responseHits(app);
      expect((await get(app, path, headers)).status).toBe(200);
      expect(responseHits(app)).toBe(hits); // another key: the normal path answered
      expect((await get(app, path, headers)).status).toBe(200);
      expect(responseHits(app)).toBe(hits + 1);
    }
  });

  it("counts its hits as cache hits of the procedure", async () => {
    const metric = async () =>
      Number(
        /^cache_requests_total\{procedure="orders.count",result="hit"\} (\d+)/m.exec(
          await (await fetch(`${apps.a.url}/metrics`)).text(),
        )?.[1] ?? 0,
      );
    await get(apps.a, "/count?customerid=30");
    const before = await metric();
    await get(apps.a, "/count?customerid=30");
    expect(await metric()).toBe(before + 1);
  });
});

describe("kept responses", () => {
  const response = (storedAs: string, bytes: number): KeptResponse => ({
    storedAs,
    read: { procedure: "p", key: "k", tags: ["t"], tokens: "e1,t1", ttlMs: 60_000 },
    body: Buffer.alloc(bytes, "x"),
    etag: '"e"',
    headers: {},
    notModified: {},
  });

  it("stay within their byte bound, dropping the least recently used", () => {
    const kept = new KeptResponses(16 * 1024);
    for (let i = 0; i < 100; i++) kept.set(response(`u${i}`, 1000), 60_000);
    expect(kept.bytes).toBeGreaterThan(8 * 1024);
    expect(kept.bytes).toBeLessThanOrEqual(16 * 1024);
    expect(kept.size).toBeLessThan(100);
    expect(kept.get("u0")).toBeUndefined();
    expect(kept.get("u99")).toBeDefined();
  });

  it("keep nothing without a lifetime (the LRU would keep it for good)", () => {
    const kept = new KeptResponses(16 * 1024);
    kept.set(response("u", 10), 0);
    expect(kept.get("u")).toBeUndefined();
  });
});
