// /openapi.json and /docs (Swagger UI, served from the plugin's own files, as
// FastAPI serves them): the REST routes come from their Fastify route schemas,
// the tRPC procedures from the same zod schemas the procedures validate with,
// so a caller without TypeScript can try every procedure from the page.
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import { jsonSchemaTransform, jsonSchemaTransformObject } from "fastify-type-provider-zod";
import { z } from "zod";
import { addOrderInput, countOrdersInput, customerInput, yearInput } from "../inputs.ts";

const schema = (type: z.ZodType, io: "input" | "output") => {
  const { $schema: _, ...json } = z.toJSONSchema(type, { io, unrepresentable: "any" }) as Record<string, unknown>;
  return json;
};

// What procedures answer; the resolvers' return types are checked against these in test/api-docs.test.ts.
const money = z
  .string()
  .regex(/^\d+\.\d{2}$/)
  .describe('an exact decimal amount, e.g. "25.00"');
const date = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);
export const procedureOutputs = {
  count: z.object({ count: z.number().int().min(0) }),
  monthly: z.array(z.object({ month: z.string().describe("YYYY-MM"), orders: z.number().int(), revenue: money })),
  summary: z.object({
    customerId: z.number().int(),
    orders: z.number().int(),
    totalSpent: money,
    lastOrderDate: date.nullable(),
  }),
  order: z.object({
    orderId: z.number().int(),
    orderDate: date,
    customerId: z.number().int().nullable(),
    netAmount: money,
    tax: money,
    totalAmount: money,
  }),
};

interface ProcedureDoc {
  path: string;
  type: "query" | "mutation";
  summary: string;
  input: z.ZodType;
  output: z.ZodType;
  errors: Record<number, string>;
  example: unknown;
}

const unavailable = { 503: "SERVICE_UNAVAILABLE: the database is unavailable" };
export const procedures: ProcedureDoc[] = [
  {
    path: "orders.count",
    type: "query",
    summary: "Count orders, in all or of one customer (cached)",
    input: countOrdersInput,
    output: procedureOutputs.count,
    errors: { 400: "BAD_REQUEST: invalid input, with the failing fields", ...unavailable },
    example: { customerId: 9999 },
  },
  {
    path: "orders.monthly",
    type: "query",
    summary: "Orders and revenue per month of one year (cached)",
    input: yearInput,
    output: procedureOutputs.monthly,
    errors: { 400: "BAD_REQUEST: invalid input, with the failing fields", ...unavailable },
    example: { year: 2004 },
  },
  {
    path: "customers.summary",
    type: "query",
    summary: "A customer's orders at a glance (cached)",
    input: customerInput,
    output: procedureOutputs.summary,
    errors: {
      400: "BAD_REQUEST: invalid input, with the failing fields",
      404: "NOT_FOUND: no such customer",
      ...unavailable,
    },
    example: { customerId: 9999 },
  },
  {
    path: "orders.add",
    type: "mutation",
    summary: "Add an order; invalidates the cached results it changes",
    input: addOrderInput,
    output: procedureOutputs.order,
    errors: {
      400: "BAD_REQUEST: invalid input, with the failing fields",
      401: "UNAUTHORIZED: the server has an API_TOKEN and the bearer token was missing or wrong",
      404: "NOT_FOUND: no such customer",
      409: "CONFLICT: this idempotencyKey was already used for another order",
      413: "the body is larger than the limit",
      415: "the body is not JSON (Content-Type: application/json)",
      ...unavailable,
    },
    example: { customerId: 9999, netAmount: "23.00", tax: "2.00", orderDate: "2023-03-10" },
  },
];

// tRPC's wire format with the superjson transformer: values travel as {"json": …}.
const superjsonOf = (json: Record<string, unknown>) => ({
  type: "object",
  properties: { json, meta: { type: "object", description: "superjson's type annotations, when needed" } },
  required: ["json"],
});
const trpcError = superjsonOf({
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
});

function procedureOperation(procedure: ProcedureDoc) {
  const responses = {
    200: {
      description: "the result",
      content: {
        "application/json": {
          schema: {
            type: "object",
            properties: {
              result: { type: "object", properties: { data: superjsonOf(schema(procedure.output, "output")) } },
            },
          },
        },
      },
    },
    ...Object.fromEntries(
      Object.entries(procedure.errors).map(([status, description]) => [
        status,
        {
          description,
          content: { "application/json": { schema: { type: "object", properties: { error: trpcError } } } },
        },
      ]),
    ),
  };
  const input = superjsonOf(schema(procedure.input, "input"));
  const example = { json: procedure.example };
  const common = { tags: ["tRPC"], summary: procedure.summary, operationId: procedure.path, responses };
  if (procedure.type === "query") {
    return {
      get: {
        ...common,
        description: "A tRPC query. `input` is the superjson-serialized input as JSON, URL-encoded.",
        parameters: [
          { name: "input", in: "query", required: false, content: { "application/json": { schema: input, example } } },
        ],
      },
    };
  }
  return {
    post: {
      ...common,
      description: "A tRPC mutation; needs a bearer token when the server has an API_TOKEN.",
      security: [{}, { bearer: [] }],
      requestBody: { required: true, content: { "application/json": { schema: input, example } } },
    },
  };
}

export async function registerDocs(app: FastifyInstance, version: string): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "dellstore-orders",
        version,
        description:
          "The FastAPI tutorial's REST routes, and the tRPC API at /trpc (superjson). TypeScript apps use the typed client, @dellstore/client.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    },
    transform: jsonSchemaTransform,
    transformObject: (documents) => {
      const document = jsonSchemaTransformObject(documents) as { paths?: Record<string, unknown> };
      // tRPC's one Fastify route, /trpc/:path, is described procedure by procedure instead.
      const { "/trpc/{path}": _, ...paths } = document.paths ?? {};
      const trpc = Object.fromEntries(procedures.map((p) => [`/trpc/${p.path}`, procedureOperation(p)]));
      return { ...document, paths: { ...paths, ...trpc } } as ReturnType<typeof jsonSchemaTransformObject>;
    },
  });
  // Its assets are the plugin's own files (no CDN); the page reads the spec from /docs/json.
  await app.register(fastifySwaggerUi, { routePrefix: "/docs" });
  app.get("/openapi.json", { schema: { hide: true } }, () => app.swagger());
}
