// OpenTelemetry through its Node SDK with the in-memory exporter: a call of
// the typed client made inside the caller's trace is one trace, from the
// client through HTTP (our request span and Fastify's), the cache lookup
// (hit / miss / bypass, with its tags), Valkey and the SQL, under the
// caller's trace id; a bare request's traceparent is honoured too.
import { SpanKind, trace } from "@opentelemetry/api";
import { tracing as sdkTracing } from "@opentelemetry/sdk-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startTracing, tracingRequested } from "../server/telemetry/index.ts";
import { startTestApp, type TestApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { cachePrefix } from "./support/valkey.ts";

const exporter = new sdkTracing.InMemorySpanExporter();
const tracing = await startTracing({ spanProcessors: [new sdkTracing.SimpleSpanProcessor(exporter)] });
const db = useTestDatabase("seeded");
let server: TestApp;
beforeAll(async () => {
  server = await startTestApp(
    { DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: cachePrefix() },
    { tracing },
  );
  expect(await server.app.cache.ready(5000)).toBe(true);
});
afterAll(async () => {
  await server?.close();
  await tracing.shutdown();
});

const caller = trace.getTracer("the caller");

/** Runs `call` in a span of the caller's own, and returns the spans of its trace once they have all ended. */
async function traced(call: () => Promise<unknown>, expected: (spans: sdkTracing.ReadableSpan[]) => boolean) {
  exporter.reset();
  const root = await caller.startActiveSpan("caller", async (span) => {
    try {
      await call();
      return span.spanContext();
    } finally {
      span.end();
    }
  });
  // The server ends its request span when the response's socket work is done, after the client has the answer.
  const ofTrace = () => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === root.traceId);
  await expect.poll(() => expected(ofTrace())).toBe(true);
  return { root, spans: ofTrace() };
}
const named = (spans: sdkTracing.ReadableSpan[], name: string | RegExp) =>
  spans.filter((s) => (typeof name === "string" ? s.name === name : name.test(s.name)));
const parentOf = (span: sdkTracing.ReadableSpan) => span.parentSpanContext?.spanId;
/** The names of the spans above `span`, nearest first. */
function ancestors(spans: sdkTracing.ReadableSpan[], span: sdkTracing.ReadableSpan | undefined): string[] {
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  const names: string[] = [];
  for (let s = span && byId.get(parentOf(span) ?? ""); s; s = byId.get(parentOf(s) ?? "")) names.push(s.name);
  return names;
}

describe("a call of the typed client inside the caller's trace", () => {
  it("is one trace through HTTP, the cache lookup (a miss), Valkey and SQL, under the caller's span", async () => {
    const customerId = 4321;
    const { root, spans } = await traced(
      () => server.client.orders.count.query({ customerId }),
      (spans) =>
        spans.some((s) => s.kind === SpanKind.SERVER && s.attributes["http.response.status_code"] !== undefined),
    );
    const [request] = spans.filter((s) => s.kind === SpanKind.SERVER);
    expect(request).toBeDefined();
    if (!request) return;
    expect(parentOf(request)).toBe(root.spanId); // the traceparent the client sent
    expect(request.attributes).toMatchObject({
      "http.request.method": "GET",
      "url.path": "/trpc/orders.count",
      "http.response.status_code": 200,
      "http.route": "/trpc/:path",
    });
    expect(request.name).toBe("GET /trpc/:path");

    const [lookup] = named(spans, "cache lookup");
    expect(lookup?.attributes).toMatchObject({
      "cache.procedure": "orders.count",
      "cache.tags": [`orders:customer:${customerId}`],
      "cache.result": "miss",
    });
    // The client batches, so tRPC answers (a batch is never kept by the response cache): under Fastify's handler, under the request.
    expect(ancestors(spans, lookup)).toEqual(
      expect.arrayContaining(["handler - fastifyTRPCPlugin", "request", request.name]),
    );
    expect(named(spans, "MGET")[0]?.attributes).toMatchObject({ "db.system.name": "valkey" });

    const [load] = named(spans, "cache load");
    const [select] = named(spans, "SELECT");
    expect(select?.attributes).toMatchObject({ "db.system.name": "postgresql", "db.namespace": db.name });
    expect(String(select?.attributes["db.query.text"])).toMatch(/from "customer_order_stats"|from "orders"/i);
    expect(String(select?.attributes["db.query.text"])).not.toContain(String(customerId)); // placeholders, not values
    expect(parentOf(select as sdkTracing.ReadableSpan)).toBe(load?.spanContext().spanId);
    // Fastify's own spans (@fastify/otel) are in the same trace, under the request.
    const fastify = spans.filter((s) => s.instrumentationScope.name === "@fastify/otel");
    expect(fastify.length).toBeGreaterThan(0);
    expect(new Set(spans.map((s) => s.spanContext().traceId))).toEqual(new Set([root.traceId]));
  });

  it("shows a hit as a hit, with no SQL", async () => {
    await server.client.orders.count.query({ customerId: 4322 });
    const { spans } = await traced(
      () => server.client.orders.count.query({ customerId: 4322 }),
      (spans) => spans.some((s) => s.kind === SpanKind.SERVER),
    );
    expect(named(spans, "cache lookup")[0]?.attributes["cache.result"]).toBe("hit");
    expect(named(spans, /^(SELECT|WITH)$/)).toEqual([]);
  });

  it("traces a write: its SQL and the invalidation of its tags", async () => {
    const { spans } = await traced(
      () => server.client.orders.add.mutate({ customerId: 4323, netAmount: "1.00", tax: "0.10" }),
      (spans) => spans.some((s) => s.kind === SpanKind.SERVER),
    );
    expect(named(spans, "SELECT").some((s) => /add_order/.test(String(s.attributes["db.query.text"])))).toBe(true);
    expect(named(spans, "cache invalidate")[0]?.attributes["cache.tags"]).toEqual(
      expect.arrayContaining(["orders:all", "orders:customer:4323"]),
    );
  });
});

describe("a request's traceparent", () => {
  it("is honoured without the client, and a no-store request is a bypass", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parentId = "00f067aa0ba902b7";
    exporter.reset();
    const res = await fetch(`${server.url}/count?customerid=4324`, {
      headers: { traceparent: `00-${traceId}-${parentId}-01`, "cache-control": "no-store" },
    });
    expect(res.status).toBe(200);
    await res.text();
    await expect.poll(() => exporter.getFinishedSpans().some((s) => s.kind === SpanKind.SERVER)).toBe(true);
    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    const request = spans.find((s) => s.kind === SpanKind.SERVER);
    expect(request && parentOf(request)).toBe(parentId);
    expect(named(spans, "cache lookup")[0]?.attributes["cache.result"]).toBe("bypass");
  });

  it("continues into a hit the response cache answers before Fastify: the request span and its lookup only", async () => {
    const traceId = "0af7651916cd43dd8448eb211c80319c";
    await (await fetch(`${server.url}/count?customerid=4326`)).text();
    exporter.reset();
    const res = await fetch(`${server.url}/count?customerid=4326`, {
      headers: { traceparent: `00-${traceId}-b7ad6b7169203331-01` },
    });
    expect(res.headers.get("etag")).not.toBeNull();
    await res.text();
    await expect.poll(() => exporter.getFinishedSpans().some((s) => s.kind === SpanKind.SERVER)).toBe(true);
    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    expect(spans.map((s) => s.name).sort()).toEqual(["GET", "MGET", "cache lookup"]);
    expect(named(spans, "cache lookup")[0]?.attributes["cache.result"]).toBe("hit");
  });
});

describe("whether tracing is on", () => {
  it("is decided by the standard OTEL_* variables: off when none is set", () => {
    expect(tracingRequested({ PATH: "/usr/bin", DATABASE_URL: "postgres://x" })).toBe(false);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: "console" })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toBe(true);
    expect(tracingRequested({ OTEL_SERVICE_NAME: "orders", OTEL_SDK_DISABLED: "true" })).toBe(false);
    expect(tracingRequested({ OTEL_SERVICE_NAME: "" })).toBe(false);
    expect(tracingRequested({ OTEL_SERVICE_NAME: "orders", OTEL_TRACES_EXPORTER: "none" })).toBe(false);
  });
});
