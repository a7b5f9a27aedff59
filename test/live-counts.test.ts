// Live counts: orders.watchCount over SSE with the typed client, and
// GET /count/stream, on real PostgreSQL and Valkey and real listening servers.
// A subscriber sees its count change after an API write, a psql write and a
// COPY; a write on one instance reaches a subscriber on another; a reconnect
// with Last-Event-ID gets the latest count; a burst ends at the exact final
// count; MAX_SUBSCRIPTIONS, heartbeats, shutdown and /metrics.
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { EventSource } from "eventsource";
import { afterAll, describe, expect, inject, it } from "vitest";
import { createClient } from "../client/index.ts";
import { startTestApp, type TestApp, useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { counts, openSse, type SseStream } from "./support/sse.ts";
import { cachePrefix } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const prefix = cachePrefix();
const env = () => ({ DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: prefix });
const a = useApp(env);
const b = useApp(env);

// Each test watches customers of its own (the seeded database has 20,000).
let nextCustomer = 100;
const customer = () => (nextCustomer += 97);

const add = (app: TestApp, customerId: number) =>
  fetch(`${app.url}/add/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ customerid: customerId, netamount: 10, tax: 1, orderdate: "2024-05-01" }),
  }).then((res) => {
    expect(res.status).toBe(200);
  });

const psqlInsert = (customerId: number) =>
  db.sql`INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount) VALUES ('2024-05-02', ${customerId}, 5, 0.5, 5.5)`;

async function copyOrders(customerId: number, n: number): Promise<void> {
  const rows = Array.from({ length: n }, () => `2024-05-03\t${customerId}\t7.00\t0.70\t7.70\n`);
  const writable = await db.sql`COPY orders (orderdate, customerid, netamount, tax, totalamount) FROM STDIN`.writable();
  await pipeline(Readable.from(rows), writable);
}

const countOf = async (customerId?: number) =>
  customerId === undefined
    ? Number((await db.sql`SELECT count(*) AS n FROM orders`)[0]?.n)
    : Number((await db.sql`SELECT count(*) AS n FROM orders WHERE customerid = ${customerId}`)[0]?.n);

const streamUrl = (app: TestApp, customerId?: number) =>
  `${app.url}/count/stream${customerId === undefined ? "" : `?customerid=${customerId}`}`;
const dataWith = (count: number) => (e: { data?: string }) => e.data === JSON.stringify({ count });

/** The typed client's subscription, collecting every count it is sent. */
function watch(app: TestApp, customerId?: number) {
  const client = createClient({ url: app.url, retry: false, EventSource });
  const seen: number[] = [];
  const ids: string[] = [];
  const waiters = new Set<() => void>();
  const subscription = client.orders.watchCount.subscribe(customerId === undefined ? undefined : { customerId }, {
    onData: ({ id, data }) => {
      ids.push(id);
      seen.push(data.count);
      for (const waiter of waiters) waiter();
    },
  });
  return {
    seen,
    ids,
    /** Resolves once a count equal to `count` has arrived. */
    until: (count: number, timeoutMs = 10_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!seen.includes(count)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no count ${count} in ${timeoutMs} ms; saw ${JSON.stringify(seen)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: () => subscription.unsubscribe(),
  };
}

const opened: SseStream[] = [];
afterAll(() => {
  for (const stream of opened) stream.close();
});
async function sse(url: string, headers?: Record<string, string>): Promise<SseStream> {
  const stream = await openSse(url, headers);
  opened.push(stream);
  return stream;
}

describe("orders.watchCount (typed client, SSE)", () => {
  it("yields the count at once, then N+1 after an API write, a psql write and a COPY", async () => {
    const id = customer();
    const n = await countOf(id);
    const live = watch(a, id);
    try {
      await live.until(n);
      await add(a, id);
      await live.until(n + 1);
      await psqlInsert(id);
      await live.until(n + 2);
      await copyOrders(id, 3);
      await live.until(n + 5);
      expect(live.seen).toEqual([n, n + 1, n + 2, n + 5]);
      // tracked(): every event has an id, each one new.
      expect(new Set(live.ids).size).toBe(live.ids.length);
    } finally {
      live.close();
    }
  });

  it("is written by its own route byte for byte as tRPC's handler writes it, Last-Event-ID included", async () => {
    const id = customer();
    const url = `${a.url}/trpc/orders.watchCount?input=${encodeURIComponent(JSON.stringify({ json: { customerId: id } }))}`;
    const trpcData = (count: number) => (e: { data?: string }) => e.data === JSON.stringify({ json: { count } });
    const n = await countOf(id);
    const direct = await sse(url);
    // Any other parameter leaves the request to tRPC's own handler (a lastEventId that matches no event changes nothing).
    const viaTrpc = await sse(`${url}&lastEventId=none`);
    expect(direct.headers.connection).toBe("close");
    expect(direct.headers["cache-control"]).toMatch(/no-transform/);
    expect(viaTrpc.headers.connection).toBe("keep-alive");
    for (const stream of [direct, viaTrpc]) await stream.waitFor(trpcData(n));
    await psqlInsert(id);
    for (const stream of [direct, viaTrpc]) await stream.waitFor(trpcData(n + 1));
    expect(direct.body()).toBe(viaTrpc.body());
    expect(direct.body()).toMatch(/^event: connected\ndata: \{"reconnectAfterInactivityMs":\d+\}\n\n\n/);

    // A reconnecting EventSource's header: nothing is sent again until the count changes.
    const latest = (await direct.waitFor(trpcData(n + 1))).id as string;
    const resumed = await sse(url, { "last-event-id": latest });
    await resumed.waitFor((e) => e.event === "connected");
    await psqlInsert(id);
    await resumed.waitFor(trpcData(n + 2));
    expect(resumed.events.filter((e) => e.data?.includes("count")).map((e) => e.data)).toEqual([
      JSON.stringify({ json: { count: n + 2 } }),
    ]);
  });

  it("reaches a subscriber on instance B after a write on instance A", async () => {
    const id = customer();
    const n = await countOf(id);
    const onB = watch(b, id);
    try {
      await onB.until(n);
      await add(a, id);
      await onB.until(n + 1);
    } finally {
      onB.close();
    }
  });

  it("watches the total too", async () => {
    const live = watch(a);
    try {
      const n = await countOf();
      await live.until(n);
      await add(b, customer());
      await live.until(n + 1);
    } finally {
      live.close();
    }
  });

  it("1,000 writes in a burst end with the subscriber holding the exact final count, never going back", async () => {
    const id = customer();
    const n = await countOf(id);
    const live = watch(a, id);
    const stream = await sse(streamUrl(b, id));
    try {
      await live.until(n);
      await stream.waitFor(dataWith(n));
      // Half through the API of both instances, half by psql in single-row statements, all at once.
      const writes = Array.from({ length: 1000 }, (_, i) =>
        i % 2 === 0 ? () => add(i % 4 === 0 ? a : b, id) : () => psqlInsert(id),
      );
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < writes.length) await writes[next++]?.();
        }),
      );
      expect(await countOf(id)).toBe(n + 1000);
      await live.until(n + 1000);
      await stream.waitFor(dataWith(n + 1000));
      for (const seen of [live.seen, counts(stream)]) {
        expect(seen.at(-1)).toBe(n + 1000);
        // Coalesced (far fewer events than writes) and never an older count after a newer one.
        expect(seen.length).toBeLessThan(1000);
        expect(seen).toEqual([...seen].sort((x, y) => x - y));
      }
    } finally {
      live.close();
    }
  });
});

describe("GET /count/stream (plain SSE)", () => {
  it("streams id: and data: {count} lines, and the next count after a write", async () => {
    const id = customer();
    const n = await countOf(id);
    const stream = await sse(streamUrl(a, id));
    expect(stream.status).toBe(200);
    expect(stream.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    const first = await stream.waitFor((e) => e.data !== undefined);
    expect(first.data).toBe(`{"count":${n}}`);
    expect(first.id).toMatch(/^\S+$/);
    await psqlInsert(id);
    const second = await stream.waitFor(dataWith(n + 1));
    expect(second.id).not.toBe(first.id);
  });

  it("resumes from Last-Event-ID with the latest count, and sends nothing new to a client that has it", async () => {
    const id = customer();
    const n = await countOf(id);
    const first = await sse(streamUrl(a, id));
    const held = await first.waitFor(dataWith(n));
    first.close();
    await add(a, id);
    // Away during the write: back with the id it last got, it is sent the count it missed.
    const resumed = await sse(streamUrl(a, id), { "last-event-id": held.id as string });
    const latest = await resumed.waitFor((e) => e.data !== undefined);
    expect(latest.data).toBe(`{"count":${n + 1}}`);
    // With the id of the latest count it is not sent again: the next event is the next change.
    const upToDate = await sse(streamUrl(a, id), { "last-event-id": latest.id as string });
    await add(a, id);
    const next = await upToDate.waitFor((e) => e.data !== undefined);
    expect(next.data).toBe(`{"count":${n + 2}}`);
  });

  it("refuses a bad customerid with 422 and a clear message", async () => {
    const stream = await sse(`${a.url}/count/stream?customerid=abc`);
    expect(stream.status).toBe(422);
    await stream.ended;
    expect(JSON.parse(stream.body())).toEqual({ detail: expect.stringContaining("customerid") });
  });

  it("answers a bad orders.watchCount input with BAD_REQUEST naming the field, never a 5xx", async () => {
    const inputs = [
      '{"json":{"customerId":-1}}',
      '{"json":{"customerId":"x"}}',
      "not json",
      '{"json":[]}',
      '{"json":5}',
    ];
    // A reconnecting EventSource's Last-Event-ID joins an object input only, as tRPC has it.
    for (const [input, headers] of inputs.flatMap((i) => [[i, {}] as const, [i, { "last-event-id": "x" }] as const])) {
      const stream = await sse(`${a.url}/trpc/orders.watchCount?input=${encodeURIComponent(input)}`, headers);
      expect(stream.status, input).toBeLessThan(500);
      // tRPC answers a subscription's error inside its stream (what httpSubscriptionLink reads), or as a plain 400.
      if (stream.status !== 200) await stream.ended;
      const shape =
        stream.status === 200
          ? JSON.parse((await stream.waitFor((e) => e.event === "serialized-error")).data as string)
          : (JSON.parse(stream.body()) as { error: { json: { data: { code: string }; message: string } } }).error;
      expect(shape.json.data.code, input).toBe("BAD_REQUEST");
      expect(shape.json.message, input).not.toMatch(/internal|stack|postgres:\/\//i);
      if (input.includes("customerId")) expect(shape.json.message, input).toMatch(/customerId/);
    }
  });

  it("is documented in /openapi.json", async () => {
    const spec = (await (await fetch(`${a.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(spec.paths).toHaveProperty("/count/stream");
  });
});

describe("a new stream's first event", () => {
  it("includes every write acknowledged before it opened, while the throttle holds a newer count back", async () => {
    // A 3 s interval makes the throttle certain to hold back every write below: the
    // watcher's first publication starts it, and the writes and streams take milliseconds.
    const intervalMs = 3000;
    const app = await startTestApp(env(), { live: { minIntervalMs: intervalMs } });
    const streams: SseStream[] = [];
    const open = async (url: string) => {
      const stream = await openSse(url);
      streams.push(stream);
      return stream;
    };
    const trpcUrl = (customerId: number) =>
      `${app.url}/trpc/orders.watchCount?input=${encodeURIComponent(JSON.stringify({ json: { customerId } }))}`;
    const countsOf = (stream: SseStream) =>
      stream.events
        .filter((e) => e.data !== undefined && e.event === undefined)
        .map((e) => {
          const data = JSON.parse(e.data as string) as { count?: number; json?: { count: number } };
          return data.json?.count ?? (data.count as number);
        });
    const firstCount = async (stream: SseStream) => {
      await stream.waitFor((e) => e.data !== undefined && e.event === undefined);
      return countsOf(stream)[0];
    };
    try {
      const id = customer();
      const n = await countOf(id);
      // A watcher makes the topic and its first publication, which starts the interval.
      const watcher = await open(streamUrl(app, id));
      await watcher.waitFor(dataWith(n));
      const fresh: SseStream[] = [];
      for (const [i, url] of [streamUrl(app, id), trpcUrl(id), streamUrl(app, id), trpcUrl(id)].entries()) {
        await add(app, id); // answered 200
        const expected = await countOf(id);
        expect(expected).toBe(n + i + 1);
        // Opened right after the write's answer: its first event is a read, so it holds that write.
        const stream = await open(url);
        expect(stream.status).toBe(200);
        expect(await firstCount(stream), `stream ${i + 1} (${url})`).toBe(expected);
        fresh.push(stream);
      }
      // Every stream converges on the database's count, never going back; the watcher's
      // events stayed throttled (the new streams' reads weren't fanned out to it).
      for (const stream of [watcher, ...fresh]) {
        await stream.waitFor(
          (e) => e.data === JSON.stringify({ count: n + 4 }) || e.data === JSON.stringify({ json: { count: n + 4 } }),
          { timeoutMs: intervalMs + 5000 },
        );
        const seen = countsOf(stream);
        expect(seen).toEqual([...new Set(seen)].sort((x, y) => x - y));
      }
      expect(countsOf(watcher)).toEqual([n, n + 4]);
    } finally {
      for (const stream of streams) stream.close();
      await app.close();
    }
  }, 20_000);
});

describe("limits, heartbeats, shutdown, metrics", () => {
  it("answers 503 beyond MAX_SUBSCRIPTIONS, on both routes, and takes streams again once one closes", async () => {
    const app = await startTestApp({ ...env(), MAX_SUBSCRIPTIONS: "2" });
    try {
      const one = await openSse(streamUrl(app));
      const two = await openSse(streamUrl(app, customer()));
      await one.waitFor((e) => e.data !== undefined);
      await two.waitFor((e) => e.data !== undefined);
      const refused = await openSse(streamUrl(app));
      expect(refused.status).toBe(503);
      expect(refused.headers["retry-after"]).toBe("1");
      await refused.ended;
      expect(JSON.parse(refused.body()).detail).toMatch(/MAX_SUBSCRIPTIONS/);
      const trpc = await fetch(`${app.url}/trpc/orders.watchCount?input=${encodeURIComponent('{"json":{}}')}`);
      expect(trpc.status).toBe(503);
      expect(((await trpc.json()) as { error: { json: { data: { code: string } } } }).error.json.data.code).toBe(
        "SERVICE_UNAVAILABLE",
      );
      one.close();
      await expect.poll(() => app.app.context.live?.subscriptions, { interval: 5 }).toBe(1);
      const three = await openSse(streamUrl(app));
      expect(three.status).toBe(200);
      three.close();
      two.close();
    } finally {
      await app.close();
    }
  });

  it("frees the slot of a client that leaves while its count is still loading, on both routes", async () => {
    const app = await startTestApp(env());
    const hub = app.app.context.live;
    try {
      for (const trpc of [false, true]) {
        const id = customer();
        await db.sql.begin(async (tx) => {
          // The count's first load waits for this transaction.
          await tx`LOCK TABLE customer_order_stats IN ACCESS EXCLUSIVE MODE`;
          const url = trpc
            ? `${app.url}/trpc/orders.watchCount?input=${encodeURIComponent(JSON.stringify({ json: { customerId: id } }))}`
            : streamUrl(app, id);
          const controller = new AbortController();
          const response = fetch(url, { signal: controller.signal }).catch(() => undefined);
          await expect.poll(() => hub?.subscriptions, { interval: 5 }).toBe(1);
          controller.abort();
          await response;
          await expect.poll(() => hub?.subscriptions, { interval: 5 }).toBe(0);
        });
      }
      // Once loaded, nothing came back to life.
      await fetch(`${app.url}/health`);
      expect(hub?.subscriptions).toBe(0);
    } finally {
      await app.close();
    }
  });

  it("sends heartbeats while nothing changes", async () => {
    const app = await startTestApp(env(), { live: { heartbeatMs: 20 } });
    try {
      const stream = await openSse(streamUrl(app));
      await stream.waitFor((e) => e.data !== undefined);
      const beats = stream.events.length;
      await stream.waitFor((e) => e.comment === "heartbeat", { from: beats });
      await stream.waitFor((e) => e.comment === "heartbeat", { from: beats + 1 });
      stream.close();
      // tRPC's heartbeat is a ping event (httpSubscriptionLink reconnects after three periods without any event).
      const trpc = await openSse(`${app.url}/trpc/orders.watchCount?input=${encodeURIComponent('{"json":{}}')}`);
      await trpc.waitFor((e) => e.data !== undefined && e.id !== undefined);
      const pings = trpc.events.length;
      await trpc.waitFor((e) => e.event === "ping", { from: pings });
      await trpc.waitFor((e) => e.event === "ping", { from: pings + 1 });
      trpc.close();
    } finally {
      await app.close();
    }
  });

  it("ends every stream at once on shutdown, and the drain completes", async () => {
    const app = await startTestApp({ ...env(), SHUTDOWN_GRACE_SECONDS: "30" });
    const plain = await openSse(streamUrl(app));
    await plain.waitFor((e) => e.data !== undefined);
    const trpc = await openSse(`${app.url}/trpc/orders.watchCount?input=${encodeURIComponent('{"json":{}}')}`);
    await trpc.waitFor((e) => e.data !== undefined && e.id !== undefined);
    const started = performance.now();
    await app.close();
    // Well before the 30 s grace (and the 5 s keep-alive): the streams and their connections were ended.
    expect(performance.now() - started).toBeLessThan(3000);
    await plain.ended;
    await trpc.ended;
    // tRPC's stream ends without a "return" event, so the typed client reconnects (to another instance).
    expect(trpc.events.some((e) => e.event === "return")).toBe(false);
  });

  it("exposes open subscriptions, events sent and the push latency in /metrics", async () => {
    const id = customer();
    const n = await countOf(id);
    const stream = await sse(streamUrl(a, id));
    await stream.waitFor(dataWith(n));
    await add(a, id);
    await stream.waitFor(dataWith(n + 1));
    const text = await (await fetch(`${a.url}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
    expect(value("live_subscriptions")).toBeGreaterThanOrEqual(1);
    expect(value("live_events_total")).toBeGreaterThanOrEqual(2);
    expect(value("live_push_latency_seconds_count")).toBeGreaterThanOrEqual(1);
  });
});

describe("without Valkey (the in-process cache)", () => {
  const memory = useApp(() => ({ DATABASE_URL: db.url }));

  it("pushes API and psql writes from the same process's bumps and applier", async () => {
    const id = customer();
    const n = await countOf(id);
    const stream = await sse(streamUrl(memory, id));
    await stream.waitFor(dataWith(n));
    await add(memory, id);
    await stream.waitFor(dataWith(n + 1));
    await psqlInsert(id);
    await stream.waitFor(dataWith(n + 2));
  });
});
