// The HTTP layer's edges: writes take JSON only (cross-site forms can't
// write), HEAD answers every GET, the last of repeated query parameters wins,
// the Host header is checked while bound to loopback, a cache miss walks the
// cache once and parses its input once (its hit neither), and a request line or headers over
// the limit get 414 or 431 before the connection closes.
import { request } from "node:http";
import { connect } from "node:net";
import superjson from "superjson";
import { afterEach, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { ordersCount } from "../server/routers/cache-policies.ts";
import { startTestApp, useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { cachePrefix } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: cachePrefix() }));
beforeAll(async () => {
  expect(await server.app.cache.ready(5000)).toBe(true);
});
afterEach(() => {
  vi.restoreAllMocks();
});
const orderCount = async () => (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders`)[0]?.n;
const customerCount = async (id: number) =>
  (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders WHERE customerid = ${id}`)[0]?.n;

/** FastAPI's {"detail"} on the REST routes; tRPC's error shape, with its code, on tRPC's. */
function expectRefusal(path: string, body: unknown, trpcCode: string) {
  if (path.startsWith("/trpc/")) expect(body).toMatchObject({ error: { json: { data: { code: trpcCode } } } });
  else expect(Object.keys(body as object)).toEqual(["detail"]);
}

describe("writes whose body isn't JSON", () => {
  const restBody = '{"customerid":1,"netamount":1,"tax":0}';
  const trpcBody = JSON.stringify({ json: { customerId: 1, netAmount: 1, tax: 0 } });
  const form = new FormData();
  form.set("customerid", "1");
  it.each([
    ["text/plain", "/add/", restBody, { "content-type": "text/plain" }],
    ["a form", "/add", "customerid=1&netamount=1&tax=0", { "content-type": "application/x-www-form-urlencoded" }],
    ["no content type", "/add/", restBody, {}],
    ["text/plain", "/trpc/orders.add", trpcBody, { "content-type": "text/plain;charset=UTF-8" }],
    ["a form", "/trpc/orders.add", "json=1", { "content-type": "application/x-www-form-urlencoded" }],
  ])("%s to %s → 415 in the API's error shape, nothing stored", async (_, path, body, headers) => {
    const before = await orderCount();
    const res = await fetch(`${server.url}${path}`, { method: "POST", headers, body });
    expect(res.status).toBe(415);
    expectRefusal(path, await res.json(), "UNSUPPORTED_MEDIA_TYPE");
    expect(await orderCount()).toBe(before);
  });

  it.each(["/add/", "/trpc/orders.add"])("multipart to %s → 415, nothing stored", async (path) => {
    const before = await orderCount();
    const res = await fetch(`${server.url}${path}`, { method: "POST", body: form });
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.status).toBe(415);
    expectRefusal(path, await res.json(), "UNSUPPORTED_MEDIA_TYPE");
    expect(await orderCount()).toBe(before);
  });

  it("takes JSON with a charset", async () => {
    const res = await fetch(`${server.url}/add/`, {
      method: "POST",
      headers: { "content-type": "application/json; charset=utf-8" },
      body: restBody,
    });
    expect(res.status).toBe(200);
  });
});

describe("HEAD", () => {
  it.each([
    "/",
    "/favicon.ico",
    "/count",
    "/count/",
    "/health",
    "/metrics",
    "/openapi.json",
    "/docs/json",
    "/trpc/orders.count",
  ])("answers HEAD %s as GET, without a body", async (path) => {
    const get = await fetch(`${server.url}${path}`);
    const head = await fetch(`${server.url}${path}`, { method: "HEAD" });
    expect(head.status).toBe(get.status);
    expect(head.headers.get("content-type")).toBe(get.headers.get("content-type"));
    expect(await head.text()).toBe("");
  });
});

describe("repeated query parameters", () => {
  it("take the last value, as FastAPI does", async () => {
    const res = await fetch(`${server.url}/count?customerid=1&customerid=2`, {
      headers: { "cache-control": "no-store" },
    });
    expect(await res.json()).toEqual({ count: await customerCount(2) });
  });
});

describe("the Host header while bound to 127.0.0.1", () => {
  const withHost = (host: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const { port } = new URL(server.url);
      const req = request({ host: "127.0.0.1", port, path: "/count", headers: { host } }, (res) => {
        let body = "";
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end();
    });

  it.each(["attacker.example", "attacker.example:8000", "127.0.0.1.nip.io"])(
    "refuses %s (DNS rebinding) with 421 {detail}",
    async (host) => {
      const { status, body } = await withHost(host);
      expect(status).toBe(421);
      expect(Object.keys(JSON.parse(body) as object)).toEqual(["detail"]);
    },
  );

  it.each(["localhost", "localhost:8000", "127.0.0.1:1234", "[::1]:80", "LOCALHOST"])("serves %s", async (host) => {
    expect((await withHost(host)).status).toBe(200);
  });

  it("serves the names listed in ALLOWED_HOSTS", async () => {
    const listed = await startTestApp({ DATABASE_URL: db.url, ALLOWED_HOSTS: "orders.internal, api.example" });
    try {
      const { port } = new URL(listed.url);
      const get = (host: string) =>
        new Promise<number>((resolve, reject) => {
          const req = request({ host: "127.0.0.1", port, path: "/health", headers: { host } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on("error", reject);
          req.end();
        });
      expect(await get("orders.internal:8000")).toBe(200);
      expect(await get("api.example")).toBe(200);
      expect(await get("other.example")).toBe(421);
    } finally {
      await listed.close();
    }
  });
});

describe("a miss", () => {
  it.each([
    ["REST", (id: number) => `/count?customerid=${id}`],
    ["tRPC", (id: number) => `/trpc/orders.count?input=${encodeURIComponent(superjson.stringify({ customerId: id }))}`],
  ])("over %s walks the cache once and parses its input once, and the hit that follows neither", async (_, path) => {
    // Every parse of the schema runs it (tRPC bound its parse function when the procedure was built).
    const runs = vi.spyOn(ordersCount.input._zod, "run");
    const id = 80 + Math.floor(Math.random() * 1000);
    // This entry's lines (the applier's passes log bumps of other tags meanwhile).
    const lines = () =>
      server.logs
        .filter((l) => String(l.key ?? "").endsWith(`:orders.count:{"customerId":${id}}`))
        .map((l) => [l.msg, l.tier]);
    const res = await fetch(`${server.url}${path(id)}`);
    expect(res.status).toBe(200);
    expect(lines()).toEqual([
      ["cache miss", undefined],
      ["cache store", undefined],
    ]);
    expect(runs).toHaveBeenCalledTimes(1);
    const hit = await fetch(`${server.url}${path(id)}`);
    expect(hit.headers.get("etag")).not.toBeNull();
    expect(lines().slice(2)).toEqual([["cache hit", "response"]]);
    expect(runs).toHaveBeenCalledTimes(1);
  });
});

describe("a superjson input nested thousands deep", () => {
  // (By GET it can't get that deep: the URL is bounded by the 16 KiB header limit, 414.)
  it("gets 400 with a message that says so, never a stack overflow's", async () => {
    const meta = `{"values":${"[".repeat(9000)}"undefined"${"]".repeat(9000)}}`;
    const res = await fetch(`${server.url}/trpc/orders.add`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: `{"json":{},"meta":${meta}}`,
    });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(text).not.toMatch(/call stack/i);
    expect(text).toMatch(/nested too deeply/);
  });
});

describe("a request line or headers over the 16 KiB limit", () => {
  /**
   * Sends `head` on a fresh connection, 64 KiB at a time as a client on a real
   * network would (the server reads some before the rest arrives), then
   * half-closes, and reads what comes back until the server closes.
   * Sent at once, 1 MB fits in loopback's socket buffers and the reset never shows.
   */
  const exchange = (head: string) =>
    new Promise<{ answer: string; error?: string }>((resolve) => {
      const { port } = new URL(server.url);
      // Half-open allowed: like curl or a blocking client, it sends its whole request whatever arrives meanwhile.
      const socket = connect({ port: Number(port), host: "127.0.0.1", allowHalfOpen: true });
      let answer = "";
      socket.setEncoding("latin1");
      socket.on("data", (chunk: string) => {
        answer += chunk;
      });
      // ECONNRESET (or EPIPE) is the bug: the server hung up with our request unread, so its kernel reset
      // the connection, and a client still sending never reads the answer.
      socket.on("error", (error: NodeJS.ErrnoException) => resolve({ answer, error: error.code ?? error.message }));
      socket.on("close", () => resolve({ answer }));
      const data = Buffer.from(head, "latin1");
      const send = (from: number) => {
        if (from >= data.length) return socket.end();
        socket.write(data.subarray(from, from + 65536), () => setTimeout(() => send(from + 65536), 2));
      };
      send(0);
    });
  const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as unknown;
  const longUrl = `GET /${"a".repeat(1024 * 1024)} HTTP/1.1\r\nHost: localhost\r\n\r\n`;

  it("answers a 1 MB URL with 414 and a {detail} body, then closes", async () => {
    const { answer, error } = await exchange(longUrl);
    expect(error).toBeUndefined();
    expect(answer).toMatch(/^HTTP\/1\.1 414 URI Too Long\r\n/);
    expect(answer).toMatch(/\r\ncontent-type: application\/json\r\n/i);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(bodyOf(answer)).toEqual({ detail: expect.stringMatching(/^URI Too Long: /) });
  });

  it("answers a 20 KB URL sent in one packet with its headers with 414, to fetch too", async () => {
    const res = await fetch(`${server.url}/count?customerid=${"9".repeat(20_000)}`);
    expect(res.status).toBe(414);
    expect(await res.json()).toEqual({ detail: expect.stringMatching(/^URI Too Long: /) });
  });

  it("answers headers over the limit with 431 and a {detail} body, then closes", async () => {
    const headers = Array.from({ length: 40 }, (_, i) => `X-Filler-${i}: ${"y".repeat(1000)}\r\n`).join("");
    const { answer, error } = await exchange(`GET /count HTTP/1.1\r\nHost: localhost\r\n${headers}\r\n`);
    expect(error).toBeUndefined();
    expect(answer).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(bodyOf(answer)).toEqual({ detail: expect.stringMatching(/^Request Header Fields Too Large: /) });
  });

  it("closes a refused connection whose client never stops sending, within seconds", async () => {
    const { port } = new URL(server.url);
    const socket = connect({ port: Number(port), host: "127.0.0.1", allowHalfOpen: true });
    let answer = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      answer += chunk;
    });
    socket.on("error", () => {}); // reset at the end: it was still sending
    const started = performance.now();
    const closed = new Promise<number>((resolve) => socket.on("close", () => resolve(performance.now() - started)));
    socket.write(`GET /${"a".repeat(32 * 1024)}`);
    const endless = setInterval(() => socket.writable && socket.write("a".repeat(1024)), 50);
    const ms = await closed;
    clearInterval(endless);
    expect(answer).toMatch(/^HTTP\/1\.1 414 /);
    expect(ms).toBeLessThan(5000);
  });

  it("still serves a normal request on a new connection", async () => {
    await exchange(longUrl);
    const res = await fetch(`${server.url}/count`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ count: await orderCount() });
  });
});
