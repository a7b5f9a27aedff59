// Writes need the API token when one is set; bodies, headers, slow clients and
// batches are bounded.
import { connect } from "node:net";
import { TRPCClientError } from "@trpc/client";
import { describe, expect, it } from "vitest";
import { createClient } from "../client/index.ts";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { lastJson, run } from "./support/run.ts";

const token = "test-token-0123456789abcdef";
const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url, API_TOKEN: token, HTTP_HEADERS_TIMEOUT_SECONDS: "2" }));
const orderCount = async () => (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders`)[0]?.n;
const addRest = (headers: Record<string, string> = {}) =>
  fetch(`${server.url}/add/`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: '{"customerid":1,"netamount":1,"tax":0}',
  });

describe("with API_TOKEN set", () => {
  it.each([
    ["no Authorization header", {}],
    ["a wrong token", { authorization: "Bearer not-the-token-at-all-0000" }],
    ["the token without Bearer", { authorization: token }],
    ["a prefix of the token", { authorization: `Bearer ${token.slice(0, -1)}` }],
  ])("POST /add/ with %s is 401 and writes nothing", async (_, headers) => {
    const before = await orderCount();
    const res = await addRest(headers);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe("Bearer");
    expect(await res.json()).toEqual({ detail: "Writes need the header Authorization: Bearer <API_TOKEN>." });
    expect(await orderCount()).toBe(before);
  });

  it("accepts the token, and leaves queries open", async () => {
    expect((await addRest({ authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await fetch(`${server.url}/count`)).status).toBe(200);
    expect(await server.client.orders.count.query()).toEqual({ count: await orderCount() });
  });

  it("makes tRPC mutations UNAUTHORIZED without it, and the client sends it when given", async () => {
    const error = await server.client.orders.add.mutate({ customerId: 1, netAmount: 1, tax: 0 }).catch((e) => e);
    expect(error).toBeInstanceOf(TRPCClientError);
    expect(error.data).toMatchObject({ code: "UNAUTHORIZED", httpStatus: 401 });
    const authorized = createClient({ url: server.url, token });
    expect(await authorized.orders.add.mutate({ customerId: 1, netAmount: 1, tax: 0 })).toMatchObject({
      customerId: 1,
    });
  });

  it("lets the CLI write with API_TOKEN from the environment, and not without", async () => {
    const line = ["run", "client", "--", "add", "--customer", "2", "--net", "1.00", "--tax", "0.08"];
    const denied = await run("npm", line, { SERVER_URL: server.url });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("error: Writes need the header Authorization: Bearer <API_TOKEN>.");
    const allowed = await run("npm", line, { SERVER_URL: server.url, API_TOKEN: token });
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(lastJson(allowed.stdout)).toMatchObject({ customerId: 2, totalAmount: "1.08" });
  });
});

describe("bounded input", () => {
  const big = JSON.stringify({ customerid: 1, netamount: 1, tax: 0, padding: "x".repeat(70 * 1024) });

  it("refuses bodies over 64 KiB with 413, on REST and tRPC, with or without a Content-Length", async () => {
    const headers = { "content-type": "application/json", authorization: `Bearer ${token}` };
    const before = await orderCount();
    expect((await fetch(`${server.url}/add/`, { method: "POST", headers, body: big })).status).toBe(413);
    expect((await fetch(`${server.url}/trpc/orders.add`, { method: "POST", headers, body: big })).status).toBe(413);
    const chunked = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const streamed = await fetch(`${server.url}/add/`, {
      method: "POST",
      headers,
      body: chunked,
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(await orderCount()).toBe(before);
  });

  it("refuses tRPC batches of more than 20 calls", async () => {
    const batch = (n: number) =>
      fetch(`${server.url}/trpc/${Array(n).fill("orders.count").join(",")}?batch=1&input=${encodeURIComponent("{}")}`);
    expect((await batch(20)).status).toBe(200);
    const tooMany = await batch(21);
    expect(tooMany.status).toBe(400);
    expect(await tooMany.text()).toContain("Batch call exceeds maximum size");
  });

  it("drops a connection that trickles its headers (slowloris)", async () => {
    const { port } = new URL(server.url);
    const socket = connect(Number(port), "127.0.0.1");
    const started = performance.now();
    const closed = new Promise<number>((resolve) => socket.on("close", () => resolve(performance.now() - started)));
    socket.on("error", () => {});
    socket.write("GET /count HTTP/1.1\r\nHost: localhost\r\n");
    const trickle = setInterval(() => socket.writable && socket.write("X-Slow: a\r\n"), 300);
    const ms = await closed;
    clearInterval(trickle);
    expect(ms).toBeGreaterThan(1500);
    expect(ms).toBeLessThan(6000);
  });

  it("refuses oversized headers with 431", async () => {
    const res = await fetch(`${server.url}/count`, { headers: { "x-big": "y".repeat(20 * 1024) } });
    expect(res.status).toBe(431);
  });
});
