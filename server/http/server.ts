// One Fastify app on the listener's node:http server: tRPC under /trpc, the
// FastAPI tutorial's REST routes, operations, and the docs, with the response
// cache in front (hits of cached GETs are answered before Fastify routes
// them). Every error is {"detail": …} with FastAPI's status codes, except
// tRPC's own, which keep tRPC's shape.
import type { IncomingMessage, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { TRPCError } from "@trpc/server";
import { fastifyRequestHandler, fastifyTRPCPlugin } from "@trpc/server/adapters/fastify";
import { getHTTPStatusCodeFromError, type ResponseMetaFn } from "@trpc/server/http";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from "fastify";
import { hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Config } from "../config.ts";
import { describeIssues } from "../inputs.ts";
import type { Logger } from "../logger.ts";
import { type ProcedureRecord, procedureDocs } from "../routers/documented.ts";
import { procedures as appProcedures } from "../routers/index.ts";
import type { Tracing } from "../telemetry/index.ts";
import { router as buildRouter, type Context } from "../trpc.ts";
import type { Listener } from "./connections.ts";
import { countStreamRoutes } from "./count-stream.ts";
import { checkHealth, healthResponse } from "./health.ts";
import { allowsHost, isLoopbackAddress } from "./hosts.ts";
import { indexPageRoutes } from "./index-page.ts";
import { maxBatchSize } from "./limits.ts";
import { livePageRoutes } from "./live-page.ts";
import { registerDocs } from "./openapi.ts";
import { headersForStatus, isTrpcPath, Protocol, pathOf } from "./protocol.ts";
import { answersAlone, contextFor } from "./request-context.ts";
import { ResponseCache } from "./response-cache.ts";
import { restRoutes } from "./rest.ts";

export interface HttpOptions {
  listener: Listener;
  context: Context;
  log: Logger;
  limits: Config["http"];
  /** Host names accepted besides loopback ones while bound to a loopback address (DNS rebinding). */
  allowedHosts: readonly string[];
  /** The API: its procedures (the router's record); tests mount their own. */
  api?: { procedures: ProcedureRecord };
  /** OpenTelemetry, when on: the request's span, then Fastify's. */
  tracing?: Tracing | undefined;
  /** Test seam: the plain SSE stream's heartbeat period. */
  liveHeartbeatMs?: number | undefined;
}

// The package's own package.json, through its "exports" (the same from server/ and dist/server/).
const { version: packageVersion } = createRequire(import.meta.url)("dellstore-orders/package.json") as {
  version: string;
};

export async function createHttpApp(options: HttpOptions): Promise<FastifyInstance> {
  const { listener, context, log, limits } = options;
  const { procedures } = options.api ?? { procedures: appProcedures };
  const router = buildRouter(procedures);
  const documented = procedureDocs(procedures);
  const checkHosts = isLoopbackAddress(listener.address.address);
  const allowedHosts = new Set(options.allowedHosts.map((host) => host.toLowerCase()));
  const hostAllowed = (host: string | undefined) => !checkHosts || allowsHost(host, allowedHosts);
  const responses = ResponseCache.over(context.cache, { log, metrics: context.metrics });

  let handle: Parameters<Listener["serve"]>[0] | undefined;
  const app: FastifyInstance = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // One logger for every request: a child per request costs more than it tells.
    childLoggerFactory: (logger) => logger,
    // Requests aren't logged one by one (/metrics counts them); neither is a client hanging up mid-upload.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.maxBodyBytes,
    exposeHeadRoutes: true,
    return503OnClosing: false,
    // As FastAPI: of repeated query parameters, the last one counts.
    routerOptions: {
      querystringParser: (query: string) => Object.fromEntries(new URLSearchParams(query)),
      // tRPC batches name every procedure in the path; the header size limit bounds it anyway.
      maxParamLength: 8192,
    },
    // A URL Fastify can't route (bad percent-encoding, a path segment over maxParamLength): in the path's API's shape.
    frameworkErrors: (error, req, reply) =>
      protocol.refuse(
        req,
        reply,
        error.statusCode ?? 400,
        error.statusCode === 414 ? "URI Too Long" : "The URL is not valid",
      ),
    // A request node:http can't read (a URL or headers over the limit) is the listener's to answer
    // (connections.ts); Fastify's own answer would reset a connection whose client is still sending.
    clientErrorHandler: () => {},
    serverFactory: (handler) => {
      handle = handler;
      return listener.server;
    },
  });
  // First, so it sees every route and hook.
  if (options.tracing) await app.register(options.tracing.fastifyPlugin);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  const requestContext = (req: FastifyRequest) => contextFor(context, req.raw);
  const protocol = new Protocol({
    router,
    procedures: documented,
    createContext: requestContext,
    hostAllowed,
    // hasRoute reads its url as a route pattern: a request path with a "*" inside (say "/*/") makes it
    // throw. Our REST routes are plain paths, so a path it can't read names none of them.
    hasRoute: (url, method) => {
      try {
        return app.hasRoute({ url, method });
      } catch {
        return false;
      }
    },
  });
  app.addHook("onRequest", (req, reply, done) => {
    const refusal = protocol.check(req, reply);
    if (refusal) refusal.catch(done);
    else done();
  });
  app.addHook("onSend", (_req, reply, payload, done) => {
    // tRPC answers with a Response, whose status Fastify applies after this hook.
    const status = payload instanceof Response ? payload.status : reply.statusCode;
    const headers = headersForStatus(status);
    if (headers) reply.headers(headers);
    done(null, payload);
  });
  // Keeps what it may of the answers (the first for a URL: the hits that follow answer the same bytes).
  if (responses) app.addHook("onSend", responses.onSend);
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ detail: "Not Found" }));
  app.setErrorHandler((error, req, reply) => {
    const [status, detail] = restError(error, limits.maxBodyBytes);
    if (status === 500) log.error({ err: error, path: pathOf(req) }, "request failed");
    if (status === 401) reply.header("www-authenticate", "Bearer");
    // Fastify's own refusals (413, a body it can't parse) on tRPC's paths, in tRPC's shape.
    if (isTrpcPath(pathOf(req))) return protocol.refuse(req, reply, status, detail);
    return reply.code(status).send({ detail });
  });

  type ResponseMetaOptions = Parameters<ResponseMetaFn<typeof router>>[0];
  const trpcOptions = {
    router,
    maxBatchSize,
    createContext: ({ req }: { req: FastifyRequest }) => requestContext(req),
    // tRPC's word that a response is one query's answer and nothing else, which the response cache may keep.
    responseMeta({ ctx, info, type, errors, eagerGeneration }: ResponseMetaOptions) {
      const single = info && !info.isBatchCall && info.calls.length === 1 ? info.calls[0] : undefined;
      if (ctx && single && type === "query" && errors.length === 0 && !eagerGeneration) answersAlone(ctx, single.path);
      return {};
    },
    onError({ error, path }: { error: TRPCError; path?: string }) {
      if (error.code === "INTERNAL_SERVER_ERROR") log.error({ err: error.cause ?? error, path }, "procedure failed");
    },
  };

  await registerDocs(app, { version: packageVersion, procedures: documented }); // before the routes it documents
  restRoutes(app, { context });
  if (context.live)
    countStreamRoutes(app, {
      hub: context.live,
      trpcHandler: (req, reply, path) => fastifyRequestHandler({ ...trpcOptions, req, res: reply, path }),
      heartbeatMs: options.liveHeartbeatMs,
    });
  livePageRoutes(app);
  indexPageRoutes(app);
  const health = {
    summary: "Is the service up, and are its database and cache, and do changes made outside the app reach the cache?",
  };
  app.get(
    "/health",
    { schema: { ...health, response: { 200: healthResponse, 503: healthResponse } } },
    async (_req, reply) => {
      const state = await checkHealth(context);
      return reply.code(state.status === "ok" ? 200 : 503).send(state);
    },
  );
  app.get(
    "/metrics",
    { schema: { summary: "Prometheus metrics (text/plain; version=0.0.4)" } },
    async (_req, reply) => {
      const { registry } = context.metrics;
      return reply.type(registry.contentType).send(await registry.metrics());
    },
  );

  await app.register(async (trpc) => {
    // tRPC's adapter knows GET and POST only: a HEAD is answered as the GET, and node:http drops the body.
    trpc.addHook("onRequest", (req, _reply, done) => {
      if (req.raw.method === "HEAD") req.raw.method = "GET";
      done();
    });
    await trpc.register(fastifyTRPCPlugin, { prefix: "/trpc", trpcOptions });
  });
  await app.ready();
  // Requests that arrived while starting waited in the listener until now.
  const fastify = handle;
  if (!fastify) throw new Error("Fastify did not hand over its request handler");
  const serve = (req: IncomingMessage, res: ServerResponse) => {
    // Hits of cached GETs are answered before Fastify routes them; everything else goes straight on.
    const kept = responses?.match(req);
    if (!kept) return fastify(req, res);
    responses?.serve(req, res, kept).then(
      (served) => served || fastify(req, res),
      () => fastify(req, res),
    );
  };
  // Decided once: with tracing off, requests take exactly the untraced path.
  listener.serve(options.tracing ? options.tracing.requests(serve) : serve);
  return app;
}

/** FastAPI's answers: 422 for invalid input, 401, 404, 413, 503; anything unexpected is a bare 500. */
function restError(error: unknown, bodyLimit: number): [number, string] {
  if (hasZodFastifySchemaValidationErrors(error)) {
    const issues = error.validation.map((v) => ({
      path: v.instancePath.split("/").filter(Boolean),
      message: v.message,
    }));
    return [422, describeIssues({ issues } as unknown as z.ZodError)];
  }
  if (error instanceof z.ZodError) return [422, describeIssues(error)];
  if (error instanceof TRPCError) {
    if (error.code === "BAD_REQUEST") {
      return [422, error.cause instanceof z.ZodError ? describeIssues(error.cause) : error.message];
    }
    const status = getHTTPStatusCodeFromError(error);
    return [status, status >= 500 && status !== 503 && status !== 504 ? "Internal Server Error" : error.message];
  }
  const fastifyError = error as Partial<FastifyError>;
  switch (fastifyError.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return [413, `Request body is larger than ${bodyLimit} bytes`];
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return [422, "Request body is not valid JSON"];
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return [415, "Unsupported Media Type: send the body as application/json"];
  }
  if (error instanceof SyntaxError && fastifyError.statusCode === 400) return [422, "Request body is not valid JSON"];
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) return [status, fastifyError.message ?? "Bad Request"];
  return [500, "Internal Server Error"];
}
