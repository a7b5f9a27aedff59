// /openapi.json and /docs (Swagger UI, served from the plugin's own files, as
// FastAPI serves them). The REST routes come from their Fastify route
// schemas; the tRPC procedures from the router's own declarations
// (routers/documented.ts), so a procedure added to the router is documented
// with no other edit. What every answer obeys (protocol.ts: 405, 421,
// Retry-After) is added to every operation here, and each operation is put
// under one of the document's tags (Swagger UI's groups) here.
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import { type TRPC_ERROR_CODE_KEY, TRPCError } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import type { FastifyInstance } from "fastify";
import { jsonSchemaTransform, jsonSchemaTransformObject } from "fastify-type-provider-zod";
import type { OpenAPIV3_1 } from "openapi-types";
import { z } from "zod";
import type { ProcedureDoc, ProcedureKind } from "../routers/documented.ts";
import { maxBatchSize } from "./limits.ts";
import { retryAfterSeconds, trpcPrefix } from "./protocol.ts";

type Json = Record<string, unknown>;

/** The document's groups, in the order Swagger UI shows them. */
const tags = {
  rest: {
    name: "REST (FastAPI-compatible)",
    description:
      'The FastAPI tutorial\'s routes, answered exactly as it did, for curl: `GET /count[?customerid=N]` and `POST /add/` (also at `/count/` and `/add`). Errors are `{"detail": "..."}`.',
  },
  trpc: {
    name: "tRPC",
    description:
      "The typed API (@dellstore/client), at /trpc: each procedure, superjson-serialized, and the batch form. Errors are tRPC's, with the failing fields in data.fields.",
  },
  live: {
    name: "Live",
    description:
      "Order counts as they change: a Server-Sent Events stream for curl and EventSource, and the /live page.",
  },
  operations: { name: "Operations", description: "For load balancers and monitoring: health and Prometheus metrics." },
} satisfies Record<string, OpenAPIV3_1.TagObject>;

/** Each route's tag, by its path; tRPC's are all under tRPC. A route missing here is untagged (test/api-docs.test.ts says so). */
const tagOfPath: Record<string, string> = {
  "/count": tags.rest.name,
  "/count/": tags.rest.name,
  "/add/": tags.rest.name,
  "/add": tags.rest.name,
  "/count/stream": tags.live.name,
  "/live": tags.live.name,
  "/health": tags.operations.name,
  "/metrics": tags.operations.name,
};

const schema = (type: z.ZodType, io: "input" | "output"): Json => {
  const { $schema: _, ...json } = z.toJSONSchema(type, { io, unrepresentable: "any" }) as Json;
  return json;
};

/** The errors any call may get, besides its procedure's own. */
const everyCall: Partial<Record<TRPC_ERROR_CODE_KEY, string>> = {
  BAD_REQUEST: "invalid input, with the failing fields in data.fields",
  METHOD_NOT_SUPPORTED: "a method this procedure doesn't answer (see the Allow header)",
  SERVICE_UNAVAILABLE: "the database is unavailable; nothing was written (Retry-After says when to try again)",
};
const byKind: Record<ProcedureKind, Partial<Record<TRPC_ERROR_CODE_KEY, string>>> = {
  query: {},
  subscription: {},
  mutation: {
    PAYLOAD_TOO_LARGE: "the body is larger than the limit",
    UNSUPPORTED_MEDIA_TYPE: "the body is not JSON (Content-Type: application/json)",
    GATEWAY_TIMEOUT: "the write's outcome is unknown: resend it with the same idempotency key",
  },
};

// tRPC's wire format with the superjson transformer: values travel as {"json": …}.
const superjsonOf = (json: Json) => ({
  type: "object",
  properties: { json, meta: { type: "object", description: "superjson's type annotations, when needed" } },
  required: ["json"],
});
const trpcError = {
  type: "object",
  properties: {
    error: superjsonOf({
      type: "object",
      properties: {
        message: { type: "string" },
        code: { type: "integer" },
        data: {
          type: "object",
          properties: {
            code: { type: "string", description: "e.g. BAD_REQUEST, NOT_FOUND, SERVICE_UNAVAILABLE" },
            httpStatus: { type: "integer" },
            path: { type: "string" },
            fields: { type: "object", description: "the failing input fields and what is wrong with each" },
          },
        },
      },
    }),
  },
};
const jsonContent = (body: Json, example?: unknown) => ({
  "application/json": example === undefined ? { schema: body } : { schema: body, example },
});

function errorResponses(kind: ProcedureKind, own: ProcedureDoc["errors"] = {}) {
  const errors = { ...everyCall, ...byKind[kind], ...own };
  return Object.fromEntries(
    Object.entries(errors).map(([code, description]) => [
      getHTTPStatusCodeFromError(new TRPCError({ code: code as TRPC_ERROR_CODE_KEY })),
      { description: `${code}: ${description}`, content: jsonContent(trpcError) },
    ]),
  );
}

function procedureOperation(path: string, doc: ProcedureDoc) {
  const output = superjsonOf(schema(doc.output, "output"));
  const responses = {
    200:
      doc.kind === "subscription"
        ? {
            description: "server-sent events, each `data:` one output, superjson-serialized",
            content: { "text/event-stream": { schema: { type: "string" }, "x-event-data": output } },
          }
        : {
            description: "the result",
            content: jsonContent({
              type: "object",
              properties: { result: { type: "object", properties: { data: output } } },
            }),
          },
    ...errorResponses(doc.kind, doc.errors),
  };
  const input = superjsonOf(schema(doc.input, "input"));
  const example = { json: doc.example };
  const common = { tags: [tags.trpc.name], summary: doc.summary, operationId: path, responses };
  if (doc.kind === "subscription") {
    return {
      get: {
        ...common,
        description:
          "A tRPC subscription over Server-Sent Events (httpSubscriptionLink): `text/event-stream`, each event's `data` the superjson-serialized output with an `id`; errors come as a `serialized-error` event. `input` as for a query.",
        parameters: [{ name: "input", in: "query", required: false, content: jsonContent(input, example) }],
        responses: {
          ...responses,
          200: { description: "the events", content: { "text/event-stream": { schema: { type: "string" } } } },
        },
      },
    };
  }
  if (doc.kind === "query") {
    return {
      get: {
        ...common,
        description:
          doc.kind === "query"
            ? "A tRPC query. `input` is the superjson-serialized input as JSON, URL-encoded."
            : "A tRPC subscription: server-sent events (text/event-stream), each carrying one `output`. `input` as for a query.",
        parameters: [{ name: "input", in: "query", required: false, content: jsonContent(input, example) }],
      },
    };
  }
  return {
    post: {
      ...common,
      description: "A tRPC mutation; needs a bearer token when the server has an API_TOKEN.",
      security: [{}, { bearer: [] }],
      requestBody: { required: true, content: jsonContent(input, example) },
    },
  };
}

/** tRPC's batch form: several calls of one kind in one request, answered in order. */
function batchOperations(procedures: ReadonlyMap<string, ProcedureDoc>) {
  const names = (kind: ProcedureKind) => [...procedures].filter(([, doc]) => doc.kind === kind).map(([path]) => path);
  const literal = (path: string) => path.replaceAll(".", "\\.");
  const pattern = (kind: ProcedureKind) => {
    const one = `(${names(kind).map(literal).join("|")})`;
    return `^${one}(,${one})*$`;
  };
  const calls = {
    type: "object",
    description: 'By position: {"0": {"json": <first call\'s input>}, "1": …}',
    additionalProperties: superjsonOf({}),
  };
  const results = {
    type: "array",
    description: "One entry per call, in order: a result or an error, as for a single call",
    items: { anyOf: [{ type: "object", properties: { result: { type: "object" } } }, trpcError] },
  };
  const operation = (kind: ProcedureKind) => ({
    tags: [tags.trpc.name],
    operationId: `batch.${kind}`,
    summary: `Several ${kind === "query" ? "queries" : "mutations"} in one request (tRPC's batch form)`,
    description: `At most ${maxBatchSize} calls. The status is 200 when every call succeeded, 207 when some failed, otherwise the calls' common error status.`,
    parameters: [
      {
        name: "procedures",
        in: "path",
        required: true,
        description: `The procedures, comma-separated: ${names(kind).join(", ")}`,
        schema: { type: "string", pattern: pattern(kind) },
      },
      { name: "batch", in: "query", required: true, schema: { type: "string", enum: ["1"] } },
      ...(kind === "query" ? [{ name: "input", in: "query", required: false, content: jsonContent(calls) }] : []),
    ],
    ...(kind === "mutation"
      ? { security: [{}, { bearer: [] }], requestBody: { required: true, content: jsonContent(calls) } }
      : {}),
    responses: {
      200: { description: "every call succeeded", content: jsonContent(results) },
      207: { description: "some calls failed", content: jsonContent(results) },
      ...errorResponses(kind),
    },
  });
  return {
    [`${trpcPrefix}{procedures}`]: {
      ...(names("query").length > 0 ? { get: operation("query") } : {}),
      ...(names("mutation").length > 0 ? { post: operation("mutation") } : {}),
    },
  };
}

// What every operation may answer, by protocol.ts.
const commonResponses: Record<string, OpenAPIV3_1.ResponseObject> = {
  MethodNotAllowed: {
    description: "a method this path doesn't answer; the Allow header lists those it does",
    headers: { Allow: { schema: { type: "string" }, description: "e.g. GET, HEAD" } },
  },
  MisdirectedRequest: {
    description: "this Host is not served here (while bound to loopback, only loopback names and ALLOWED_HOSTS)",
    content: {
      "application/json": {
        schema: { type: "object", properties: { detail: { type: "string" } }, required: ["detail"] },
      },
    },
  },
};
const retryAfter = {
  "Retry-After": {
    description: `seconds to wait before trying again (${retryAfterSeconds})`,
    schema: { type: "integer" },
  },
};

/** Adds 405, 421 and Retry-After to every operation: they hold for every path; and the path's tag, if it has none. */
function withProtocol(paths: Record<string, Record<string, Json>>) {
  for (const [path, operations] of Object.entries(paths)) {
    const tag = tagOfPath[path];
    for (const operation of Object.values(operations)) {
      if (tag !== undefined && operation.tags === undefined) operation.tags = [tag];
      const responses = (operation.responses ?? {}) as Record<string, Json>;
      for (const status of ["503", "504"]) {
        const response = responses[status];
        if (response) responses[status] = { ...response, headers: { ...(response.headers as Json), ...retryAfter } };
      }
      responses["405"] ??= { $ref: "#/components/responses/MethodNotAllowed" };
      responses["421"] = { $ref: "#/components/responses/MisdirectedRequest" };
      operation.responses = responses;
    }
  }
  return paths;
}

export interface DocsOptions {
  version: string;
  /** The router's procedures, as declared (procedureDocs). */
  procedures: ReadonlyMap<string, ProcedureDoc>;
}

export async function registerDocs(app: FastifyInstance, { version, procedures }: DocsOptions): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "dellstore-orders",
        version,
        description:
          "The FastAPI tutorial's REST routes, and the tRPC API at /trpc (superjson). TypeScript apps use the typed client, @dellstore/client.",
      },
      tags: Object.values(tags),
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } }, responses: commonResponses },
    },
    transform: jsonSchemaTransform,
    transformObject: (documents) => {
      const document = jsonSchemaTransformObject(documents) as { paths?: Record<string, Record<string, Json>> };
      // tRPC's one Fastify route, /trpc/:path, is described procedure by procedure instead.
      const { [`${trpcPrefix}{path}`]: _, ...rest } = document.paths ?? {};
      const trpc = Object.fromEntries(
        [...procedures].map(([path, doc]) => [`${trpcPrefix}${path}`, procedureOperation(path, doc)]),
      );
      const paths = withProtocol({ ...rest, ...trpc, ...batchOperations(procedures) });
      return { ...document, paths } as ReturnType<typeof jsonSchemaTransformObject>;
    },
  });
  // Its assets are the plugin's own files (no CDN); the page reads the spec from /docs/json.
  await app.register(fastifySwaggerUi, { routePrefix: "/docs" });
  app.get("/openapi.json", { schema: { hide: true } }, () => app.swagger());
}
