// HTTP by the book, on a real listening server: a known path with a method it
// doesn't answer gets 405 with Allow before any body or content-type check;
// tRPC's paths refuse in tRPC's error shape; a miss carries the ETag of the
// hit that follows it; every 503 and 504 carries Retry-After.
import { once } from "node:events";
import { TRPCError } from "@trpc/server";
import superjson from "superjson";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { z } from "zod";
import { loadConfig } from "../server/config.ts";
import { Listener } from "../server/http/connections.ts";
import { documented } from "../server/routers/documented.ts";
import { publicProcedure } from "../server/trpc.ts";
import { startTestApp, useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { useProxy } from "./support/tcp-proxy.ts";
import { cachePrefix } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const proxy = useProxy(() => db.url, 5432);
const server = useApp(() => ({
  DATABASE_URL: proxy.url(db.url),
  VALKEY_URL: inject("valkeyUrl"),
  CACHE_PREFIX: cachePrefix(),
  DATABASE_TIMEOUT_SECONDS: "2",
}));
beforeAll(async () => {
  expect(await server.app.cache.ready(5000)).toBe(true);
});
const orderCount = async () => (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders`)[0]?.n;
const trpcInput = (input: unknown) => `input=${encodeURIComponent(superjson.stringify(input))}`;

const json = { "content-type": "application/json" };
const text = { "content-type": "text/plain" };
const form = { "content-type": "application/x-www-form-urlencoded" };
const order = JSON.stringify({ customerid: 1, netamount: 1, tax: 0 });
const trpcOrder = JSON.stringify({ json: { customerId: 1, netAmount: 1, tax: 0 } });

describe("a known path with a method it doesn't answer", () => {
  it.each([
    ["PUT", "/count", "GET, HEAD", {}, undefined],
    ["DELETE", "/count", "GET, HEAD", {}, undefined],
    ["PATCH", "/count", "GET, HEAD", text, "x"],
    ["POST", "/count", "GET, HEAD", {}, undefined],
    ["POST", "/count/", "GET, HEAD", json, "{}"],
    ["GET", "/add/", "POST", {}, undefined],
    ["PUT", "/add", "POST", json, order],
    ["DELETE", "/add/", "POST", form, "customerid=1"],
    ["PUT", "/trpc/orders.count", "GET, HEAD", {}, undefined],
    ["POST", "/trpc/orders.count", "GET, HEAD", text, "x"],
    ["POST", "/trpc/orders.count", "GET, HEAD", json, "{}"],
    ["GET", "/trpc/orders.add", "POST", {}, undefined],
    ["PATCH", "/trpc/orders.add", "POST", text, trpcOrder],
    ["DELETE", "/trpc/orders.add", "POST", json, trpcOrder],
    ["POST", "/trpc/orders.count,customers.summary?batch=1", "GET, HEAD", text, "{}"],
    // The index page and the icon: their methods come from their routes, as every other path's.
    ["POST", "/", "GET, HEAD", json, "{}"],
    ["PUT", "/", "GET, HEAD", {}, undefined],
    ["DELETE", "/favicon.ico", "GET, HEAD", {}, undefined],
  ] as const)("%s %s → 405, Allow: %s, before the body is looked at", async (method, path, allow, headers, body) => {
    const before = await orderCount();
    const res = await fetch(`${server.url}${path}`, { method, headers, body });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe(allow);
    const answer = await res.json();
    if (path.startsWith("/trpc/")) {
      const errors = Array.isArray(answer) ? answer : [answer];
      for (const error of errors) {
        expect(error).toMatchObject({ error: { json: { data: { code: "METHOD_NOT_SUPPORTED", httpStatus: 405 } } } });
      }
    } else expect(answer).toEqual({ detail: "Method Not Allowed" });
    expect(await orderCount()).toBe(before);
  });

  it("leaves unknown paths and procedures 404", async () => {
    expect((await fetch(`${server.url}/nowhere`, { method: "PUT" })).status).toBe(404);
    const unknown = await fetch(`${server.url}/trpc/orders.nothing`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { json: { data: { code: "NOT_FOUND" } } } });
  });
});

describe("tRPC's paths", () => {
  it("refuse a body over the limit in tRPC's shape (413 PAYLOAD_TOO_LARGE), storing nothing", async () => {
    const before = await orderCount();
    const res = await fetch(`${server.url}/trpc/orders.add`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ json: { customerId: 1, netAmount: 1, tax: 0, padding: "x".repeat(70_000) } }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({
      error: { json: { data: { code: "PAYLOAD_TOO_LARGE", httpStatus: 413, path: "orders.add" } } },
    });
    expect(await orderCount()).toBe(before);
  });

  it("refuse a batch's non-JSON body for each of its calls", async () => {
    const res = await fetch(`${server.url}/trpc/orders.add,orders.add?batch=1`, {
      method: "POST",
      headers: text,
      body: "{}",
    });
    expect(res.status).toBe(415);
    const answers = (await res.json()) as unknown[];
    expect(answers).toHaveLength(2);
    for (const answer of answers) {
      expect(answer).toMatchObject({ error: { json: { data: { code: "UNSUPPORTED_MEDIA_TYPE" } } } });
    }
  });

  it.each([
    ["/trpc/orders.count%ZZ", { error: { json: { data: { code: "BAD_REQUEST", httpStatus: 400 } } } }],
    ["/count%E0%A4%A", { detail: "The URL is not valid" }],
  ])("answer a URL that can't be decoded (%s) in the path's API's shape", async (path, shape) => {
    const res = await fetch(`${server.url}${path}`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject(shape);
  });

  it("reach the typed client as TRPCClientErrors it can read", async () => {
    const viaClient = await server.client.orders.count.query({ customerId: -1 }).catch((error: unknown) => error);
    expect(viaClient).toMatchObject({ data: { code: "BAD_REQUEST" } });
  });
});

describe("a miss", () => {
  it.each([
    ["REST", (id: number) => `/count?customerid=${id}`],
    ["tRPC", (id: number) => `/trpc/orders.count?${trpcInput({ customerId: id })}`],
    ["tRPC, another procedure", (id: number) => `/trpc/customers.summary?${trpcInput({ customerId: id })}`],
  ])("over %s carries the ETag of the hit that follows it", async (_, path) => {
    const id = 2000 + Math.floor(Math.random() * 10_000);
    server.logs.length = 0;
    const miss = await fetch(`${server.url}${path(id)}`);
    const hit = await fetch(`${server.url}${path(id)}`);
    expect(server.logs.filter((l) => /^cache (hit|miss)$/.test(l.msg)).map((l) => l.msg)).toEqual([
      "cache miss",
      "cache hit",
    ]);
    expect(miss.status).toBe(200);
    expect(miss.headers.get("etag")).toMatch(/^"[\w./-]+"$/);
    expect(hit.headers.get("etag")).toBe(miss.headers.get("etag"));
    const notModified = await fetch(`${server.url}${path(id)}`, {
      headers: { "if-none-match": miss.headers.get("etag") ?? "" },
    });
    expect(notModified.status).toBe(304);
  });

  it("that bypassed the cache (no-store), or failed, carries none", async () => {
    const uncached = await fetch(`${server.url}/count?customerid=77`, { headers: { "cache-control": "no-store" } });
    expect(uncached.status).toBe(200);
    expect(uncached.headers.get("etag")).toBeNull();
    const missing = await fetch(`${server.url}/trpc/customers.summary?${trpcInput({ customerId: 2_000_000 })}`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("etag")).toBeNull();
  });
});

describe("Retry-After", () => {
  it("is on every 503 and 504, REST and tRPC, single and batched, and on no other answer", async () => {
    const ok = await fetch(`${server.url}/count?customerid=3`, { headers: { "cache-control": "no-store" } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("retry-after")).toBeNull();
    proxy.cut();
    try {
      const uncached = { "cache-control": "no-store" };
      const answers = await Promise.all([
        fetch(`${server.url}/count?customerid=3`, { headers: uncached }),
        fetch(`${server.url}/add/`, { method: "POST", headers: json, body: order }),
        fetch(`${server.url}/health`),
        fetch(`${server.url}/trpc/customers.summary?${trpcInput({ customerId: 3 })}`, { headers: uncached }),
        fetch(`${server.url}/trpc/orders.add`, { method: "POST", headers: json, body: trpcOrder }),
        fetch(
          `${server.url}/trpc/orders.count,customers.summary?batch=1&input=${encodeURIComponent('{"0":{},"1":{"json":{"customerId":4}}}')}`,
          {
            headers: uncached,
          },
        ),
      ]);
      for (const res of answers) {
        // A write cut off with its statement possibly sent: its outcome is unknown (server/writes.ts).
        const status = /\/add\/|orders\.add/.test(res.url) ? 504 : 503;
        expect({ url: res.url, status: res.status }).toEqual({ url: res.url, status });
        expect(res.headers.get("retry-after")).toBe("1");
        await res.arrayBuffer();
      }
    } finally {
      proxy.restore();
    }
  });

  it("is on the 503 of a request that came while the server was starting and it stopped", async () => {
    const { http } = loadConfig({});
    const listener = await Listener.listen({ port: 0, host: "127.0.0.1", limits: http });
    // The listener has taken the request (to answer once the app is ready) when its "request" event is emitted.
    const arrived = once(listener.server, "request");
    const early = fetch(`http://127.0.0.1:${listener.address.port}/count`);
    await arrived;
    const closed = listener.close(1000);
    const res = await early;
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    await res.text();
    await closed;
  });

  it("is on a 504 (a write whose outcome is unknown), by its status alone", async () => {
    const unknownOutcome = documented(
      {
        kind: "mutation",
        summary: "always times out",
        input: z.object({}),
        output: z.object({ done: z.boolean() }),
        errors: { GATEWAY_TIMEOUT: "always" },
        example: {},
      },
      publicProcedure.input(z.object({})).mutation((): { done: boolean } => {
        throw new TRPCError({ code: "GATEWAY_TIMEOUT", message: "the outcome is unknown" });
      }),
    );
    const throwaway = await startTestApp(
      { DATABASE_URL: db.url },
      { api: { procedures: { writes: { unknownOutcome } } } },
    );
    try {
      const res = await fetch(`${throwaway.url}/trpc/writes.unknownOutcome`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ json: {} }),
      });
      expect(res.status).toBe(504);
      expect(res.headers.get("retry-after")).toBe("1");
      expect(await res.json()).toMatchObject({ error: { json: { data: { code: "GATEWAY_TIMEOUT" } } } });
    } finally {
      await throwaway.close();
    }
  });
});
