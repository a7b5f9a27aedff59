// A span for each statement the postgres.js pool runs (postgres.js has no
// OpenTelemetry instrumentation of its own), added only when tracing is on.
// It starts when the statement is issued and ends when its answer settles;
// the statement's text is recorded with its placeholders, never its values.
// Statements made outside any trace get none.
import { context, SpanKind, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import {
  ATTR_DB_NAMESPACE,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_QUERY_TEXT,
  ATTR_DB_SYSTEM_NAME,
} from "@opentelemetry/semantic-conventions";
import type postgres from "postgres";

type Settle = ((value: unknown) => unknown) | null | undefined;

export function traceStatements(sql: postgres.Sql, tracer: Tracer, database: string): void {
  const unsafe = sql.unsafe.bind(sql);
  sql.unsafe = ((query: string, ...rest: Parameters<typeof sql.unsafe> extends [string, ...infer R] ? R : never) => {
    const pending = unsafe(query, ...rest);
    // Only inside a trace: the app's background statements would each start one.
    if (!trace.getSpan(context.active())) return pending;
    const operation = /^\s*(\w+)/.exec(query)?.[1]?.toUpperCase() ?? "SQL";
    const span = tracer.startSpan(
      operation,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          [ATTR_DB_SYSTEM_NAME]: "postgresql",
          [ATTR_DB_NAMESPACE]: database,
          [ATTR_DB_OPERATION_NAME]: operation,
          [ATTR_DB_QUERY_TEXT]: query,
        },
      },
      context.active(),
    );
    let ended = false;
    const end = (error?: unknown) => {
      if (ended) return;
      ended = true;
      if (error !== undefined) {
        span.recordException(error as Error);
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    };
    // postgres.js runs a statement once it is awaited (then), after its mode (.values()) is chosen: wrap
    // that call rather than attach a handler here, which would start it early.
    const then = pending.then;
    // biome-ignore lint/suspicious/noThenProperty: the query's own then, wrapped to end its span when it settles
    pending.then = function (this: typeof pending, onFulfilled?: Settle, onRejected?: Settle) {
      return then.call(
        this,
        (rows: unknown) => {
          end();
          return onFulfilled ? onFulfilled(rows) : rows;
        },
        (error: unknown) => {
          end(error);
          if (onRejected) return onRejected(error);
          throw error;
        },
      );
    } as typeof pending.then;
    return pending;
  }) as typeof sql.unsafe;
}
