// OpenTelemetry, through its Node SDK and the standard OTEL_* variables
// (OTEL_TRACES_EXPORTER=otlp|console, OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_SERVICE_NAME, …), which the SDK reads itself. Off unless one is set:
// then nothing of it is loaded or run (every span of ours is behind the
// tracer this returns). Fastify is traced by its official @fastify/otel;
// what no instrumentation covers (the request as it arrives, the hit path,
// the cache, Valkey, postgres.js) has spans of our own (see the modules here).
import { FastifyOtelInstrumentation } from "@fastify/otel";
import { type Tracer, trace } from "@opentelemetry/api";
import { NodeSDK, type NodeSDKConfiguration } from "@opentelemetry/sdk-node";

export interface Tracing {
  /** Our own spans' tracer. */
  readonly tracer: Tracer;
  /** Fastify's instrumentation, registered on the app before its routes. */
  readonly fastifyPlugin: ReturnType<FastifyOtelInstrumentation["plugin"]>;
  /** Flushes what is still buffered and stops. */
  shutdown(): Promise<void>;
}

/** Whether the environment asks for traces: any OTEL_* variable, unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  const off = (name: string, value: string) => env[name]?.trim().toLowerCase() === value;
  if (off("OTEL_SDK_DISABLED", "true") || off("OTEL_TRACES_EXPORTER", "none")) return false;
  return Object.keys(env).some((name) => name.startsWith("OTEL_") && env[name] !== "");
}

/** Starts the SDK for this process; `configuration` is for tests (e.g. an in-memory exporter's span processor). */
export function startTracing(configuration: Partial<NodeSDKConfiguration> = {}, env = process.env): Tracing {
  const fastify = new FastifyOtelInstrumentation();
  // Our name unless the environment gives one.
  const named = env.OTEL_SERVICE_NAME || /(^|,)\s*service\.name=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? "");
  const sdk = new NodeSDK({
    ...(named ? {} : { serviceName: "dellstore-orders" }),
    ...configuration,
    instrumentations: [fastify],
  });
  sdk.start();
  return {
    tracer: trace.getTracer("dellstore-orders"),
    fastifyPlugin: fastify.plugin(),
    shutdown: () => sdk.shutdown(),
  };
}
