// The span of a request as it arrives, before the response cache or Fastify sees
// it: it continues the caller's trace (W3C traceparent), so a hit answered
// before Fastify is traced too, and @fastify/otel's spans nest under it
// (it names the route through the RPC metadata, as instrumentation-http's
// server span would take it).
import type { IncomingMessage, ServerResponse } from "node:http";
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import { type RPCMetadata, RPCType, setRPCMetadata } from "@opentelemetry/core";
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_URL_PATH,
} from "@opentelemetry/semantic-conventions";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export function tracedRequests(tracer: Tracer, handle: Handler): Handler {
  return (req, res) => {
    const method = req.method ?? "GET";
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = tracer.startSpan(
      method,
      {
        kind: SpanKind.SERVER,
        // The path only: a query string may carry a call's input.
        attributes: { [ATTR_HTTP_REQUEST_METHOD]: method, [ATTR_URL_PATH]: (req.url ?? "/").split("?", 1)[0] },
      },
      parent,
    );
    const rpc: RPCMetadata = { type: RPCType.HTTP, span };
    res.once("close", () => {
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode);
      if (rpc.route) {
        span.setAttribute(ATTR_HTTP_ROUTE, rpc.route);
        span.updateName(`${method} ${rpc.route}`);
      }
      if (res.statusCode >= 500 || !res.writableFinished) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    context.with(setRPCMetadata(trace.setSpan(parent, span), rpc), () => handle(req, res));
  };
}
