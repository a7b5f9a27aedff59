// A cached query's policy is its one declaration: what runs before the cache
// check (authorize) runs on hits too, whether tRPC answers them or the
// response cache (which keeps an answer per Authorization header), and a
// policy can't be put on a procedure it doesn't name.
import { TRPCError } from "@trpc/server";
import superjson from "superjson";
import { beforeAll, describe, expect, inject, it, vi } from "vitest";
import { z } from "zod";
import { ResponseCache } from "../server/http/response-cache.ts";
import { cachedQuery, declarePolicy } from "../server/routers/cached-query.ts";
import { createCallerFactory, router } from "../server/trpc.ts";
import { startTestApp, type TestApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { useFixture } from "./support/fixture.ts";
import { cachePrefix } from "./support/valkey.ts";

const secretPolicy = declarePolicy({
  procedure: "secret.count",
  input: z.object({ shelf: z.number().int() }),
  tags: ({ shelf }) => [`secret:${shelf}`],
  authorize(ctx) {
    if (ctx.authorization !== "Bearer open-sesame") throw new TRPCError({ code: "UNAUTHORIZED", message: "no" });
  },
});
// A parser that throws (a bug, or an input past what it can take) rather than reporting an issue.
const brittlePolicy = declarePolicy({
  procedure: "brittle.count",
  input: z.object({ shelf: z.number() }).refine(() => {
    throw new Error("the parser broke");
  }),
  tags: ({ shelf }) => [`brittle:${shelf}`],
});
let loads = 0;
const count = cachedQuery(
  secretPolicy,
  { summary: "a secret count", output: z.object({ count: z.number() }), example: { shelf: 1 } },
  async () => ({ count: ++loads }),
);
const brittle = cachedQuery(
  brittlePolicy,
  { summary: "a count whose parser throws", output: z.object({ count: z.number() }), example: { shelf: 1 } },
  async () => ({ count: 0 }),
);
const procedures = { secret: { count }, misnamed: { count }, brittle: { count: brittle } };
const testRouter = router(procedures);

const db = useTestDatabase("seeded");
const server = useFixture<TestApp>(
  () =>
    startTestApp(
      { DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: cachePrefix() },
      { api: { procedures } },
    ),
  (app) => app.close(),
);
beforeAll(async () => {
  expect(await server.app.cache.ready(5000)).toBe(true);
});

const url = (shelf: number) =>
  `${server.url}/trpc/secret.count?input=${encodeURIComponent(superjson.stringify({ shelf }))}`;
const authorized = { authorization: "Bearer open-sesame" };

describe("a check declared before the cache", () => {
  it("is enforced on hits answered by the response cache, which keeps an answer per Authorization", async () => {
    const served = vi.spyOn(ResponseCache.prototype, "serve");
    const miss = await fetch(url(1), { headers: authorized });
    expect(miss.status).toBe(200);
    expect(served).not.toHaveBeenCalled(); // nothing kept yet: tRPC answered
    const hit = await fetch(url(1), { headers: authorized });
    expect(hit.status).toBe(200);
    expect(await served.mock.results.at(-1)?.value).toBe(true); // answered from the kept response before tRPC
    served.mockRestore();
    expect(await hit.text()).toBe(await miss.text());
    const loadsBefore = loads;
    for (const headers of [{}, { authorization: "Bearer wrong" }] as Record<string, string>[]) {
      const refused = await fetch(url(1), { headers });
      expect(refused.status).toBe(401);
      expect(refused.headers.get("etag")).toBeNull();
      expect(await refused.text()).not.toContain('"count"');
    }
    expect(loads).toBe(loadsBefore);
  });

  it("is enforced on hits answered inside tRPC (a batch, an in-process call)", async () => {
    await fetch(url(2), { headers: authorized });
    const batch = await fetch(
      `${server.url}/trpc/secret.count?batch=1&input=${encodeURIComponent(JSON.stringify({ 0: { json: { shelf: 2 } } }))}`,
    );
    expect(batch.status).toBe(401);
    const caller = createCallerFactory(testRouter)(server.app.context);
    await expect(caller.secret.count({ shelf: 2 })).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    const allowed = createCallerFactory(testRouter)({ ...server.app.context, authorization: "Bearer open-sesame" });
    expect(await allowed.secret.count({ shelf: 2 })).toEqual({ count: expect.any(Number) });
  });
});

it("can't be used by a procedure it doesn't name", async () => {
  const caller = createCallerFactory(testRouter)({ ...server.app.context, authorization: "Bearer open-sesame" });
  await expect(caller.misnamed.count({ shelf: 3 })).rejects.toThrow(
    /policy of secret\.count is used by misnamed\.count/,
  );
});

it("leaves a URL whose parser throws to tRPC, which answers it, and the server goes on", async () => {
  const brittleUrl = `${server.url}/trpc/brittle.count?input=${encodeURIComponent(superjson.stringify({ shelf: 1 }))}`;
  for (let i = 0; i < 2; i++) {
    const res = await fetch(brittleUrl);
    expect(res.status).toBe(400); // tRPC takes whatever its input parser throws for a bad input
    expect(((await res.json()) as { error: { json: { data: { code: string } } } }).error.json.data.code).toBe(
      "BAD_REQUEST",
    );
  }
  expect((await fetch(url(4), { headers: authorized })).status).toBe(200);
});
