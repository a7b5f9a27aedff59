// OpenTelemetry, through its Node SDK and the standard OTEL_* variables
// (OTEL_TRACES_EXPORTER=otlp|console, OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_SERVICE_NAME, …), which the SDK reads itself. Off unless one is set,
// and then nothing of it is even loaded: this module imports types only, and
// everything else (the SDK, @fastify/otel, our spans) is loaded by
// startTracing. The app asks the Tracing it is given, if any, to wrap what it
// traces, once at start-up: untraced, a request takes the path it always took.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { NodeSDKConfiguration } from "@opentelemetry/sdk-node";
import type { FastifyPluginCallback } from "fastify";
import type postgres from "postgres";
import type { Cache } from "../cache/query-cache.ts";
import type { CacheStore } from "../cache/store.ts";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface Tracing {
  /** Fastify's official instrumentation (@fastify/otel), registered on the app before its routes. */
  readonly fastifyPlugin: FastifyPluginCallback;
  /** Each request's span, from the moment it arrives, continuing its traceparent. */
  requests(handle: Handler): Handler;
  /** Spans for lookups (hit / miss / bypass, tags), loads and invalidations. */
  cache(cache: Cache): Cache;
  /** Spans for Valkey's commands. */
  store(store: CacheStore): CacheStore;
  /** Spans for the pool's statements. */
  statements(sql: postgres.Sql, database: string): void;
  /** Flushes what is still buffered and stops. */
  shutdown(): Promise<void>;
}

/** Whether the environment asks for traces: any OTEL_* variable, unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  const off = (name: string, value: string) => env[name]?.trim().toLowerCase() === value;
  if (off("OTEL_SDK_DISABLED", "true") || off("OTEL_TRACES_EXPORTER", "none")) return false;
  return Object.keys(env).some((name) => name.startsWith("OTEL_") && env[name] !== "");
}

/** Starts the SDK for this process; `configuration` (NodeSDK's) is for tests, e.g. an in-memory exporter. */
export async function startTracing(
  configuration: Partial<NodeSDKConfiguration> = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<Tracing> {
  const { start } = await import("./start.ts");
  return start(configuration, env);
}
