// The FastAPI tutorial's HTTP API, kept for curl users: its own names
// validated by its own zod schemas (which /openapi.json describes), then the
// same tRPC procedures, so it shares their caching and errors; status codes
// are FastAPI's.
import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import {
  customerId,
  customerIdNumberOrText,
  customerIdText,
  idempotencyKey,
  isoDate,
  money,
  today,
  totalFits,
} from "../inputs.ts";
import { formatCents, maxCents } from "../money.ts";
import { createCaller } from "../routers/index.ts";
import { addOrderInputParser } from "../routers/orders.ts";
import type { Context } from "../trpc.ts";
import { contextFor } from "./request-context.ts";

export const countQuery = z.object({
  customerid: customerIdText.optional().describe("count only this customer's orders"),
});

export const addBody = z
  .object(
    {
      orderdate: isoDate.optional().describe("YYYY-MM-DD; today when left out"),
      customerid: customerIdNumberOrText,
      netamount: money.describe("the net amount, at most two decimals"),
      tax: money,
    },
    { error: "Request body must be a JSON object" },
  )
  .refine((order) => totalFits(order.netamount, order.tax), {
    path: ["tax"],
    message: `netamount + tax must not exceed ${formatCents(maxCents)}`,
    // Only a sum of two valid amounts can be too large; a bad field already has its message.
    when: (payload) => payload.issues.length === 0,
  });

export const addHeaders = z.object({
  "idempotency-key": idempotencyKey
    .optional()
    .describe(
      "Any 1 to 128 printable ASCII characters, new for each order. Resent with the same body, it answers as the first time and stores nothing more (kept 24 hours).",
    ),
});

export const countResponse = z.object({ count: z.number().int().min(0) });
export const addResponse = z.object({ updated: z.object({ customer: customerId }) });
export const errorResponse = z.object({ detail: z.string() });

const failure = (description: string) => errorResponse.describe(description);
// What Fastify sends for JSON.
const json = "application/json; charset=utf-8";

export function restRoutes(app: FastifyInstance, { context }: { context: Context }): void {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  for (const url of ["/count", "/count/"]) {
    routes.get(
      url,
      {
        schema: {
          summary: "Count orders, in all or of one customer",
          description: "Cached; a hit carries an ETag and answers 304 to If-None-Match. Also at /count/.",
          querystring: countQuery,
          response: {
            200: countResponse.describe("the count"),
            304: z.null().describe("not modified since the ETag given in If-None-Match"),
            422: failure("invalid customerid"),
            503: failure("the database is unavailable"),
          },
        },
        // Its answer is the count's one cached read: the response cache may keep it (response-cache.ts).
        config: { responseCache: true },
      },
      async (req, reply) => {
        const { customerid } = req.query;
        const input = customerid === undefined ? undefined : { customerId: customerid };
        const ctx = contextFor(context, req.raw);
        const { count } = await createCaller(ctx).orders.count(input);
        return reply.header("content-type", json).send({ count });
      },
    );
  }
  for (const url of ["/add/", "/add"]) {
    routes.post(
      url,
      {
        schema: {
          summary: "Add an order",
          description:
            "Invalidates the cached counts it changes. Also at /add. Needs a bearer token when the server has an API_TOKEN.",
          security: [{}, { bearer: [] }],
          body: addBody,
          headers: addHeaders,
          response: {
            200: addResponse.describe("the order was added"),
            401: failure("a bearer token is needed and was missing or wrong"),
            404: failure("no such customer"),
            409: failure("this Idempotency-Key was already used for another order"),
            413: failure("the body is larger than the limit"),
            415: failure("the body is not JSON (Content-Type: application/json)"),
            422: failure("invalid input, naming the field"),
            503: failure(
              "the database is unavailable: this attempt stored nothing, and never will; a retry with the same Idempotency-Key may store the order, once",
            ),
            504: failure(
              "the database did not confirm the write in time: it may be stored; retry with the same Idempotency-Key",
            ),
          },
        },
        // Every answer names the write's key, the caller's or one made here, so any caller can retry it safely.
        onRequest: (req, reply, done) => {
          req.headers["idempotency-key"] ??= randomUUID();
          const key = req.headers["idempotency-key"];
          if (typeof key === "string" && idempotencyKey.safeParse(key).success) reply.header("idempotency-key", key);
          done();
        },
      },
      async (req, reply) => {
        const order = req.body;
        // Validated above, money in cents already: the procedure takes it as it is.
        await createCaller(contextFor(context, req.raw)).orders.add(
          addOrderInputParser.trusted({
            customerId: order.customerid,
            netAmount: order.netamount,
            tax: order.tax,
            orderDate: order.orderdate ?? today(),
            dateGiven: order.orderdate !== undefined,
            idempotencyKey: req.headers["idempotency-key"],
          }),
        );
        return reply.header("content-type", json).send({ updated: { customer: order.customerid } });
      },
    );
  }
}
