// One node:http server: tRPC under /trpc, the seed's REST routes, and operations.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import superjson from "superjson";
import type { Config } from "../config.ts";
import type { Logger } from "../logger.ts";
import { appRouter } from "../routers/index.ts";
import type { Context } from "../trpc.ts";
import { cacheDeclarations, FastPath } from "./fast-path.ts";
import { checkHealth } from "./health.ts";
import { sendJson } from "./json.ts";
import { maxBatchSize } from "./limits.ts";
import { docsPage, openApiDocument, sendDocsAsset } from "./openapi.ts";
import { contextFor } from "./request-context.ts";
import { countRoute, getCount, postAdd, sendRestError } from "./rest.ts";

export interface HttpOptions {
  context: Context;
  log: Logger;
  limits: Config["http"];
}

// The package's own package.json, through its "exports" (the same from server/ and dist/server/).
const { version: packageVersion } = createRequire(import.meta.url)("dellstore-orders/package.json") as {
  version: string;
};

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>;

export function createHttpServer({ context, log, limits }: HttpOptions): Server {
  const bodyLimit = limits.maxBodyBytes;
  const trpc = createHTTPHandler({
    router: appRouter,
    basePath: "/trpc/",
    maxBodySize: bodyLimit,
    maxBatchSize,
    createContext: ({ req }) => contextFor(context, req),
    onError({ error, path }) {
      if (error.code === "INTERNAL_SERVER_ERROR") log.error({ err: error.cause ?? error, path }, "procedure failed");
    },
  });

  const rest =
    (handler: Handler): Handler =>
    async (req, res, url) => {
      try {
        await handler(req, res, url);
      } catch (error) {
        if (sendRestError(res, error) === 500) log.error({ err: error, path: url.pathname }, "request failed");
      }
    };
  const fastPath = new FastPath(context, cacheDeclarations(appRouter));
  const openApi = openApiDocument(packageVersion);
  const count = rest(async (req, res, url) => {
    const served = await fastPath.serve(req, res, {
      procedure: countRoute.procedure,
      rawInput: countRoute.input(url),
      render: (payload) => JSON.stringify(countRoute.body(superjson.parse<{ count: number }>(payload))),
    });
    if (!served) await getCount(contextFor(context, req), url, res);
  });
  // Single GET queries (not batches) may be answered from the cache before tRPC runs.
  const trpcQuery = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const input = url.searchParams.get("input");
    const served =
      req.method === "GET" &&
      !url.searchParams.has("batch") &&
      (await fastPath.serve(req, res, {
        procedure: url.pathname.slice("/trpc/".length),
        rawInput: input === null ? undefined : superjson.deserialize(JSON.parse(input)),
        render: (payload) => `{"result":{"data":${payload}}}`,
        headers: { vary: "trpc-accept, accept" },
      }));
    if (!served) trpc(req, res);
  };
  const add = rest((req, res) => postAdd(contextFor(context, req), req, res, bodyLimit));
  const routes: Record<string, Partial<Record<string, Handler>>> = {
    "/count": { GET: count },
    "/count/": { GET: count },
    "/add": { POST: add },
    "/add/": { POST: add },
    "/health": {
      GET: async (_req, res) => {
        const health = await checkHealth(context);
        sendJson(res, health.status === "ok" ? 200 : 503, health);
      },
    },
    "/openapi.json": {
      GET: async (_req, res) => sendJson(res, 200, openApi),
    },
    "/docs": {
      GET: async (_req, res) => {
        res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(docsPage);
      },
    },
    "/metrics": {
      GET: async (_req, res) => {
        const { registry } = context.metrics;
        const body = await registry.metrics();
        res.writeHead(200, { "content-type": registry.contentType }).end(body);
      },
    },
  };

  const server = createServer(
    {
      // A client that trickles its headers or body (slowloris) is cut off; idle checks run every second.
      headersTimeout: limits.headersTimeoutSeconds * 1000,
      requestTimeout: limits.requestTimeoutSeconds * 1000,
      connectionsCheckingInterval: 1000,
      maxHeaderSize: 16 * 1024,
    },
    (req, res) => {
      if (Number(req.headers["content-length"] ?? 0) > bodyLimit) {
        // Refused before reading a byte of it; the connection goes too, so the body needn't be drained.
        return sendJson(
          res,
          413,
          { detail: `Request body is larger than ${bodyLimit} bytes` },
          { connection: "close" },
        );
      }
      const url = requestUrl(req.url);
      if (!url) return sendJson(res, 400, { detail: "Bad Request" });
      if (url.pathname === "/trpc" || url.pathname.startsWith("/trpc/"))
        return void trpcQuery(req, res, url).catch(() => trpc(req, res));
      const route = routes[url.pathname];
      if (!route) {
        if (req.method === "GET" && sendDocsAsset(url.pathname, res)) return;
        return sendJson(res, 404, { detail: "Not Found" });
      }
      const handler = route[req.method ?? "GET"];
      if (!handler)
        return sendJson(res, 405, { detail: "Method Not Allowed" }, { allow: Object.keys(route).join(", ") });
      void handler(req, res, url);
    },
  );
  server.keepAliveTimeout = 5000;
  return server;
}

/** The request's URL, or undefined if it isn't one ("//", an absolute form, garbage). */
function requestUrl(target: string | undefined): URL | undefined {
  if (!target?.startsWith("/")) return undefined;
  try {
    return new URL(`http://localhost${target}`);
  } catch {
    return undefined;
  }
}
