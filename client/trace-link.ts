// Continues the caller's OpenTelemetry trace on the server: when the call is
// made inside an active trace, its W3C traceparent (and tracestate, baggage)
// goes with the request. @opentelemetry/api is an optional peer: an app
// without it loads nothing more, and one with it shares its context here.
import type { OperationContext, TRPCLink } from "@trpc/client";
import type { AppRouter } from "./api.ts";

const otel = await import("@opentelemetry/api").catch(() => undefined);
const carried = "traceHeaders";

/** Takes the caller's trace context as the call is made (a batch is sent later, from a timer). */
export function traceLink(): TRPCLink<AppRouter> {
  return () =>
    ({ op, next }) => {
      if (!otel) return next(op);
      const headers: Record<string, string> = {};
      otel.propagation.inject(otel.context.active(), headers);
      if (headers.traceparent === undefined) return next(op);
      return next({ ...op, context: { ...op.context, [carried]: headers } });
    };
}

/** The headers of the trace a request continues: its first call's (a batch is one request, so one parent). */
export function traceHeaders(calls: readonly { context: OperationContext }[]): Record<string, string> {
  return (calls[0]?.context[carried] as Record<string, string> | undefined) ?? {};
}
