// /openapi.json describes the seed's REST routes from the very zod schemas
// they validate with; /docs renders it with Swagger UI, as FastAPI's /docs does.
import { createReadStream } from "node:fs";
import type { ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";
import { z } from "zod";
import { healthResponse } from "./health.ts";
import { addBody, addResponse, countQuery, countResponse, errorResponse } from "./rest.ts";

const schema = (type: z.ZodType, io: "input" | "output") => {
  const { $schema: _, ...json } = z.toJSONSchema(type, { io, unrepresentable: "any" }) as Record<string, unknown>;
  return json;
};
const json = (type: z.ZodType, description: string) => ({
  description,
  content: { "application/json": { schema: schema(type, "output") } },
});
const failure = (description: string) => json(errorResponse, description);

function queryParameters(type: z.ZodObject) {
  const { properties = {}, required = [] } = schema(type, "input") as {
    properties?: Record<string, { description?: string }>;
    required?: string[];
  };
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: "query",
    required: required.includes(name),
    description: property.description,
    schema: property,
  }));
}

const countOperation = {
  summary: "Count orders, in all or of one customer",
  description: "Cached; a hit carries an ETag and answers 304 to If-None-Match. Also at /count/.",
  parameters: queryParameters(countQuery),
  responses: {
    200: json(countResponse, "the count"),
    304: { description: "not modified since the ETag given in If-None-Match" },
    422: failure("invalid customerid"),
    503: failure("the database is unavailable"),
  },
};

const addOperation = {
  summary: "Add an order",
  description:
    "Invalidates the cached counts it changes. Also at /add. Needs a bearer token when the server has an API_TOKEN.",
  security: [{}, { bearer: [] }],
  parameters: [
    {
      name: "Idempotency-Key",
      in: "header",
      required: false,
      description:
        "Any 1 to 128 printable ASCII characters, new for each order. Resent with the same body, it answers as the first time and stores nothing more (kept 24 hours).",
      schema: { type: "string", minLength: 1, maxLength: 128 },
    },
  ],
  requestBody: {
    required: true,
    content: {
      "application/json": {
        schema: schema(addBody, "input"),
        example: { orderdate: "2023-03-10", customerid: 9999, netamount: 23.0, tax: 2.0 },
      },
    },
  },
  responses: {
    200: json(addResponse, "the order was added"),
    401: failure("a bearer token is needed and was missing or wrong"),
    404: failure("no such customer"),
    409: failure("the Idempotency-Key was already used for a different order"),
    413: failure("the body is larger than the limit"),
    422: failure("invalid input, naming the field"),
    503: failure("the database is unavailable; the order was not stored and never will be"),
  },
};

export function openApiDocument(version: string) {
  return {
    openapi: "3.1.0",
    info: {
      title: "dellstore-orders",
      version,
      description:
        "The seed's REST routes. The full API is tRPC at /trpc (superjson): use the typed client, dellstore-orders/client.",
    },
    paths: {
      "/count": { get: countOperation },
      "/add/": { post: addOperation },
      "/health": {
        get: {
          summary: "Is the service up, and are its database, cache and change notifications?",
          responses: {
            200: json(healthResponse, "up"),
            503: json(healthResponse, "the database is down or not migrated"),
          },
        },
      },
      "/metrics": {
        get: { summary: "Prometheus metrics", responses: { 200: { description: "text/plain; version=0.0.4" } } },
      },
    },
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
  };
}

const swaggerUi = join(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"), "..");
const assets: Record<string, string> = {
  "/docs/swagger-ui.css": "text/css",
  "/docs/swagger-ui-bundle.js": "text/javascript",
};

export const docsPage = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>dellstore-orders – API docs</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui" });</script>
</body>
</html>
`;

/** Serves Swagger UI's own files from the swagger-ui-dist package; false for any other path. */
export function sendDocsAsset(path: string, res: ServerResponse): boolean {
  const type = assets[path];
  if (!type) return false;
  res.writeHead(200, { "content-type": type, "cache-control": "public, max-age=86400" });
  createReadStream(join(swaggerUi, path.slice("/docs/".length))).pipe(res);
  return true;
}
