// Valkey cut off or hung behind a real TCP proxy: answers keep coming from
// PostgreSQL, correct and without a timeout each; nothing stale after it returns.
import { describe, expect, inject, it } from "vitest";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { useProxy } from "./support/tcp-proxy.ts";
import { cachePrefix } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const proxy = useProxy(() => inject("valkeyUrl"), 6379);
const server = useApp(() => ({
  DATABASE_URL: db.url,
  VALKEY_URL: proxy.url(inject("valkeyUrl")),
  CACHE_PREFIX: cachePrefix(),
}));

const truth = async (customerId: number) =>
  (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders WHERE customerid = ${customerId}`)[0]?.n;
const count = async (customerId: number) => {
  const started = performance.now();
  const res = await fetch(`${server.url}/count?customerid=${customerId}`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { count: number };
  return { count: body.count, ms: performance.now() - started };
};
const cacheState = async () => ((await (await fetch(`${server.url}/health`)).json()) as { cache: string }).cache;
const logged = (msg: string) => server.logs.filter((l) => l.msg.startsWith(msg)).length;
const errors = async () => {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return [...text.matchAll(/^cache_errors_total\{operation="\w+"\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
};

describe.each([
  ["cut", 20],
  ["stalled", 21],
] as const)("with Valkey %s", (failure, customerId) => {
  it("serves correct answers from PostgreSQL, costs no timeout per request, and serves nothing stale after it returns", async () => {
    await expect.poll(cacheState).toBe("up");
    const downs = logged("cache unavailable");
    const ups = logged("cache available");
    const errorsBefore = await errors();

    await count(customerId);
    const warm = await count(customerId); // now cached, and the cache keeps it through the outage
    expect(warm.count).toBe(await truth(customerId));

    if (failure === "cut") proxy.cut();
    else proxy.stall();
    try {
      // The write's invalidation can't reach Valkey, which keeps the old entry.
      const add = await server.client.orders.add.mutate({ customerId, netAmount: "3.00", tax: "0.25" });
      expect(add.customerId).toBe(customerId);
      expect(await errors()).toBeGreaterThan(errorsBefore);
      const errorsAfterWrite = await errors();
      const during = [];
      for (let i = 0; i < 30; i++) during.push(await count(customerId));
      expect(during.every((r) => r.count === warm.count + 1)).toBe(true);
      // No store call per request: the breaker is open, so the reads don't each wait for a timeout.
      expect((await errors()) - errorsAfterWrite).toBeLessThanOrEqual(1);
      expect(await cacheState()).toBe("down");
      const warnings = server.logs.filter((l) => l.msg.startsWith("cache "));
      expect(logged("cache unavailable"), JSON.stringify(warnings.slice(-6))).toBe(downs + 1);
    } finally {
      proxy.restore();
    }

    await expect.poll(cacheState, { timeout: 10_000 }).toBe("up");
    expect(logged("cache available")).toBe(ups + 1);
    const after = await count(customerId);
    expect(after.count).toBe(warm.count + 1);
    expect(after.count).toBe(await truth(customerId));
  });
});
