// A cached query's policy is its one declaration: what runs before the cache
// check (authorize) runs on hits too, whether the HTTP hit path or tRPC
// answers them, and a policy can't be put on a procedure it doesn't name.
import { TRPCError } from "@trpc/server";
import superjson from "superjson";
import { beforeAll, describe, expect, inject, it, vi } from "vitest";
import { z } from "zod";
import { cachedQuery } from "../server/cache/middleware.ts";
import { declarePolicy, policyRegistry } from "../server/cache/policy.ts";
import { HitPath } from "../server/http/hit-path.ts";
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
let loads = 0;
const count = cachedQuery(
  secretPolicy,
  { summary: "a secret count", output: z.object({ count: z.number() }), example: { shelf: 1 } },
  async () => ({ count: ++loads }),
);
const procedures = { secret: { count }, misnamed: { count } };
const testRouter = router(procedures);

const db = useTestDatabase("seeded");
const server = useFixture<TestApp>(
  () =>
    startTestApp(
      { DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: cachePrefix() },
      { api: { procedures, policies: policyRegistry([secretPolicy]) } },
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
  it("is enforced on hits answered by the HTTP hit path", async () => {
    const served = vi.spyOn(HitPath.prototype, "serve");
    const miss = await fetch(url(1), { headers: authorized });
    expect(miss.status).toBe(200);
    expect(await served.mock.results.at(-1)?.value).toBe(false); // left to tRPC
    const hit = await fetch(url(1), { headers: authorized });
    expect(hit.status).toBe(200);
    expect(await served.mock.results.at(-1)?.value).toBe(true); // answered from the cache before tRPC
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
