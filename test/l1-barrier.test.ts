// The in-process tier keeps read-your-writes across instances because a hit
// waits for its barrier. Instance A writes; instance B holds the entry in
// process memory, and its invalidation connection goes through a proxy that
// holds back what Valkey sends it, so the write's invalidation is delayed. A
// read arriving at B after A acknowledged the write must not get the old count:
// its barrier PING's reply comes after the invalidation. Instance C is B
// without the barrier: the same interleaving gives it the old count.
import { describe, expect, inject, it } from "vitest";
import { createCache } from "../server/cache/index.ts";
import type { QueryCache } from "../server/cache/query-cache.ts";
import { loadConfig } from "../server/config.ts";
import { startTestApp, type TestApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { useFixture } from "./support/fixture.ts";
import { TcpProxy } from "./support/tcp-proxy.ts";
import { cachePrefix } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const prefix = cachePrefix();

interface Reader {
  app: TestApp;
  /** The proxy between the reader and Valkey on its invalidation connection only. */
  proxy: TcpProxy;
}

async function startReader(skipBarrier: boolean, barrierTimeoutMs = 60_000): Promise<Reader> {
  const valkeyUrl = inject("valkeyUrl");
  const target = new URL(valkeyUrl);
  const proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 6379) });
  const env = { DATABASE_URL: db.url, VALKEY_URL: valkeyUrl, CACHE_PREFIX: prefix };
  const config = loadConfig({ PORT: "0", ...env });
  const app = await startTestApp(env, {
    cache: ({ log, metrics }) =>
      // By default long enough that the barrier never gives up during the test: the read waits for the held bytes.
      createCache(config, log, metrics, {
        trackingUrl: proxy.url(valkeyUrl),
        barrierTimeoutMs,
        hungAfterMs: 60_000,
        skipBarrier,
      }),
  });
  return { app, proxy };
}

const apps = useFixture(
  async () => {
    const writer = await startTestApp({ DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: prefix });
    const [withBarrier, withoutBarrier, impatient] = await Promise.all([
      startReader(false),
      startReader(true),
      startReader(false, 100),
    ]);
    return { writer, withBarrier, withoutBarrier, impatient };
  },
  async ({ writer, withBarrier, withoutBarrier, impatient }) => {
    const readers = [withBarrier, withoutBarrier, impatient];
    await Promise.all([writer.close(), ...readers.map((r) => r.app.close())]);
    await Promise.all(readers.map((r) => r.proxy.close()));
  },
);

const count = async (app: TestApp, customerId: number) => {
  const res = await fetch(`${app.url}/count?customerid=${customerId}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { count: number }).count;
};
const l1Hits = async (app: TestApp) => {
  const text = await (await fetch(`${app.url}/metrics`)).text();
  return Number(/^cache_l1_requests_total\{result="hit"\} (\d+)/m.exec(text)?.[1] ?? 0);
};
const write = async (customerId: number) => {
  const res = await fetch(`${apps.writer.url}/add/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ customerid: customerId, netamount: 1, tax: 0.08 }),
  });
  expect(res.status).toBe(200); // acknowledged
};

/** Makes the reader hold customerId's count in process memory, and returns it. */
async function warm({ app }: Reader, customerId: number): Promise<number> {
  await expect.poll(() => (app.app.cache as QueryCache).tagFeed?.live, { timeout: 5000 }).toBe(true);
  const value = await count(app, customerId); // a miss: stored in Valkey
  await count(app, customerId); // a hit in Valkey: copied into process memory
  const hits = await l1Hits(app);
  expect(await count(app, customerId)).toBe(value);
  expect(await l1Hits(app)).toBe(hits + 1); // answered from process memory
  return value;
}

describe("a hit from process memory", () => {
  it("never returns what a write acknowledged before the read arrived replaced, even with its invalidation delayed", async () => {
    const reader = apps.withBarrier;
    const customerId = 60;
    const before = await warm(reader, customerId);

    reader.proxy.holdReplies(); // the invalidation of the write below waits at the proxy
    await write(customerId);

    const barrierSent = reader.proxy.sent("ping");
    let answered = false;
    const read = count(reader.app, customerId).finally(() => {
      answered = true;
    });
    await barrierSent; // the read is waiting for its barrier, whose reply is behind the held invalidation
    expect(answered).toBe(false);
    reader.proxy.restore();
    expect(await read).toBe(before + 1);
  });

  it("asks Valkey when the barrier's answer is late, and keeps the feed", async () => {
    const reader = apps.impatient;
    const customerId = 62;
    const before = await warm(reader, customerId);

    reader.proxy.holdReplies();
    await write(customerId);
    expect(await count(reader.app, customerId)).toBe(before + 1); // after 100 ms without an answer, from Valkey
    reader.proxy.restore();
    const feed = (reader.app.app.cache as QueryCache).tagFeed;
    expect(feed?.live).toBe(true);
    expect(reader.app.logs.filter((l) => l.msg.startsWith("tag tracking lost"))).toEqual([]);
    expect(await count(reader.app, customerId)).toBe(before + 1);
  });

  it("without the barrier, the same interleaving returns the old count (so the barrier is needed)", async () => {
    const reader = apps.withoutBarrier;
    const customerId = 61;
    const before = await warm(reader, customerId);

    reader.proxy.holdReplies();
    await write(customerId);

    const stale = await count(reader.app, customerId);
    reader.proxy.restore();
    expect(stale).toBe(before); // the write was acknowledged before this read arrived, yet it is not seen
    await expect.poll(() => count(reader.app, customerId), { timeout: 5000 }).toBe(before + 1);
  });
});
