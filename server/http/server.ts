// One Fastify app on the listener's node:http server: tRPC under /trpc (with
// the hit path in front of single GET queries), the FastAPI tutorial's REST
// routes, operations, and the docs. Every error is {"detail": …} with
// FastAPI's status codes, except tRPC's own, which keep tRPC's shape.
import { createRequire } from "node:module";
import type { AnyRouter } from "@trpc/server";
import { TRPCError } from "@trpc/server";
import { fastifyTRPCPlugin } from "@trpc/server/adapters/fastify";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from "fastify";
import { hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import { z } from "zod";
import type { DeclaredPolicy } from "../cache/policy.ts";
import type { Config } from "../config.ts";
import { describeIssues } from "../inputs.ts";
import type { Logger } from "../logger.ts";
import { cachePolicies } from "../routers/cache-policies.ts";
import { appRouter } from "../routers/index.ts";
import type { Context } from "../trpc.ts";
import type { Listener } from "./connections.ts";
import { countStreamRoutes } from "./count-stream.ts";
import { checkHealth, healthResponse } from "./health.ts";
import { HitPath, prefetchedFor } from "./hit-path.ts";
import { allowsHost, isLoopbackAddress } from "./hosts.ts";
import { maxBatchSize } from "./limits.ts";
import { livePageRoutes } from "./live-page.ts";
import { registerDocs } from "./openapi.ts";
import { contextFor } from "./request-context.ts";
import { restHitRoutes, restRoutes } from "./rest.ts";

export interface HttpOptions {
  listener: Listener;
  context: Context;
  log: Logger;
  limits: Config["http"];
  /** Host names accepted besides loopback ones while bound to a loopback address (DNS rebinding). */
  allowedHosts: readonly string[];
  /** The API; tests mount their own router and policies. */
  api?: { router: AnyRouter; policies: ReadonlyMap<string, DeclaredPolicy> };
  /** Test seam: the plain SSE stream's heartbeat period. */
  liveHeartbeatMs?: number | undefined;
}

// The package's own package.json, through its "exports" (the same from server/ and dist/server/).
const { version: packageVersion } = createRequire(import.meta.url)("dellstore-orders/package.json") as {
  version: string;
};

const writeMethods = new Set(["POST", "PUT", "PATCH", "DELETE"]);
export async function createHttpApp(options: HttpOptions): Promise<FastifyInstance> {
  const { listener, context, log, limits } = options;
  const { router, policies } = options.api ?? { router: appRouter, policies: cachePolicies };
  const checkHosts = isLoopbackAddress(listener.address.address);
  const allowedHosts = new Set(options.allowedHosts.map((host) => host.toLowerCase()));
  const hostAllowed = (host: string | undefined) => !checkHosts || allowsHost(host, allowedHosts);
  const hitPath = new HitPath(context, restHitRoutes, policies, hostAllowed);

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
    serverFactory: (handler) => {
      handle = handler;
      return listener.server;
    },
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  app.addHook("onRequest", (req, reply, done) => {
    if (!hostAllowed(req.headers.host)) {
      return void reply
        .code(421)
        .send({ detail: "Misdirected Request: this Host is not served here; list it in ALLOWED_HOSTS" });
    }
    // A browser sends text/plain, form and multipart bodies cross-site without asking first: writes take JSON only.
    if (writeMethods.has(req.method) && !isJson(req.headers["content-type"])) {
      return void reply.code(415).send({ detail: "Unsupported Media Type: send the body as application/json" });
    }
    done();
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split("?")[0] ?? "/";
    const allowed = ["GET", "HEAD", "POST"].filter((method) => app.hasRoute({ url: path, method }));
    if (allowed.length > 0)
      return reply.code(405).header("allow", allowed.join(", ")).send({ detail: "Method Not Allowed" });
    return reply.code(404).send({ detail: "Not Found" });
  });
  app.setErrorHandler((error, req, reply) => {
    const [status, detail] = restError(error, limits.maxBodyBytes);
    if (status === 500) log.error({ err: error, path: req.url.split("?")[0] }, "request failed");
    if (status === 401) reply.header("www-authenticate", "Bearer");
    return reply.code(status).send({ detail });
  });

  await registerDocs(app, packageVersion); // before the routes it documents
  restRoutes(app, { context });
  if (context.live) countStreamRoutes(app, { hub: context.live, heartbeatMs: options.liveHeartbeatMs });
  livePageRoutes(app);
  const health = { summary: "Is the service up, and are its database, cache and change notifications?" };
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
    await trpc.register(fastifyTRPCPlugin, {
      prefix: "/trpc",
      trpcOptions: {
        router,
        maxBatchSize,
        createContext: ({ req }: { req: FastifyRequest }) => contextFor(context, req.raw, prefetchedFor(req.raw)),
        onError({ error, path }: { error: TRPCError; path?: string }) {
          if (error.code === "INTERNAL_SERVER_ERROR")
            log.error({ err: error.cause ?? error, path }, "procedure failed");
        },
      },
    });
  });
  await app.ready();
  // Requests that arrived while starting waited in the listener until now.
  const fastify = handle;
  if (!fastify) throw new Error("Fastify did not hand over its request handler");
  listener.serve((req, res) => {
    // Hits of cached GET queries are answered before Fastify routes them; everything else goes straight on.
    const hit = hitPath.match(req);
    if (!hit) return fastify(req, res);
    hitPath.serve(req, res, hit).then(
      (served) => served || fastify(req, res),
      () => fastify(req, res),
    );
  });
  return app;
}

function isJson(contentType: string | undefined): boolean {
  const media = contentType?.split(";", 1)[0]?.trim().toLowerCase();
  return media === "application/json";
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
