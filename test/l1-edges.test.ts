// The in-process tier at its edges: a Valkey user that may not turn tracking
// on (the tier stays off, hits come from Valkey, one warning without the
// password), and L1_MAX_BYTES=0 (no tier, the tag feed still runs).
import { describe, expect, inject, it } from "vitest";
import type { QueryCache } from "../server/cache/query-cache.ts";
import { startTestApp, type TestApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { useFixture } from "./support/fixture.ts";
import { command } from "./support/local-cluster.ts";
import { startLocalValkey } from "./support/local-valkey.ts";
import { cachePrefix } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const valkey = useFixture(startLocalValkey, (server) => server.stop());
const password = "tracking-refused-secret";

const count = async (app: TestApp, customerId: number) => {
  const res = await fetch(`${app.url}/count?customerid=${customerId}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { count: number }).count;
};
const metrics = async (app: TestApp) => await (await fetch(`${app.url}/metrics`)).text();
const value = (text: string, pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0);

describe("the in-process tier", () => {
  it("stays off, with one warning and no password, when Valkey refuses CLIENT TRACKING; hits come from Valkey", async () => {
    // Everything but CLIENT TRACKING (naming the connection and asking its id stay allowed).
    const rules = ["on", `>${password}`, "~*", "&*", "+@all", "-client", "+client|setname", "+client|id"];
    expect(await command(valkey.port, "ACL", "SETUSER", "limited", ...rules)).toBe("OK");
    const app = await startTestApp({
      DATABASE_URL: db.url,
      VALKEY_URL: `redis://limited:${password}@127.0.0.1:${valkey.port}`,
      CACHE_PREFIX: cachePrefix(),
    });
    try {
      await expect
        .poll(() => app.logs.filter((l) => l.msg.startsWith("tag tracking unavailable")).length, { timeout: 10_000 })
        .toBe(1);
      const first = await count(app, 70);
      expect(await count(app, 70)).toBe(first);
      const text = await metrics(app);
      expect(value(text, /^cache_requests_total\{procedure="orders.count",result="hit"\} (\d+)/m)).toBe(1);
      expect(value(text, /^cache_l1_requests_total\{result="off"\} (\d+)/m)).toBe(2);
      expect(value(text, /^cache_tag_tracking_up (\d+)/m)).toBe(0);
      expect(JSON.stringify(app.logs)).not.toContain(password);
    } finally {
      await app.close();
    }
  });

  it("is off with L1_MAX_BYTES=0, while the tag feed still runs", async () => {
    const app = await startTestApp({
      DATABASE_URL: db.url,
      VALKEY_URL: inject("valkeyUrl"),
      CACHE_PREFIX: cachePrefix(),
      L1_MAX_BYTES: "0",
    });
    try {
      const feed = (app.app.cache as QueryCache).tagFeed;
      await expect.poll(() => feed?.live, { timeout: 5000 }).toBe(true);
      const changed: unknown[] = [];
      feed?.onTagsChanged((change) => changed.push(change));
      for (let i = 0; i < 3; i++) await count(app, 71);
      await app.client.orders.add.mutate({ customerId: 71, netAmount: 1, tax: 0 });
      const text = await metrics(app);
      expect(value(text, /^cache_requests_total\{procedure="orders.count",result="hit"\} (\d+)/m)).toBe(2);
      expect(text).not.toMatch(/^cache_l1_requests_total\{/m);
      await expect.poll(() => changed.flat(), { timeout: 5000 }).toContain("orders:customer:71");
    } finally {
      await app.close();
    }
  });
});
