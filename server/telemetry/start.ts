// The SDK and our spans, loaded only when tracing is on (see index.ts).
import { FastifyOtelInstrumentation } from "@fastify/otel";
import { trace } from "@opentelemetry/api";
import { NodeSDK, type NodeSDKConfiguration } from "@opentelemetry/sdk-node";
import { traceStatements } from "../../db/traced-sql.ts";
import { tracedRequests } from "./http-span.ts";
import type { Tracing } from "./index.ts";
import { tracedCache, tracedStore } from "./traced-cache.ts";

export function start(configuration: Partial<NodeSDKConfiguration>, env: NodeJS.ProcessEnv): Tracing {
  const fastify = new FastifyOtelInstrumentation();
  // Our name unless the environment gives one.
  const named = env.OTEL_SERVICE_NAME || /(^|,)\s*service\.name=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? "");
  const sdk = new NodeSDK({
    ...(named ? {} : { serviceName: "dellstore-orders" }),
    ...configuration,
    instrumentations: [fastify],
  });
  sdk.start();
  const tracer = trace.getTracer("dellstore-orders");
  return {
    fastifyPlugin: fastify.plugin(),
    requests: (handle) => tracedRequests(tracer, handle),
    cache: (cache) => tracedCache(cache, tracer),
    store: (store) => tracedStore(store, tracer),
    statements: (sql, database) => traceStatements(sql, tracer, database),
    shutdown: () => sdk.shutdown(),
  };
}
