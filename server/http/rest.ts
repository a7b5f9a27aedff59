// The seed app's HTTP API (FastAPI's GET /count and POST /add/), kept for curl
// users: its own names validated by its own zod schemas (which /openapi.json
// describes), then the same tRPC procedures, so it shares their caching and
// errors; status codes are FastAPI's.
import type { IncomingMessage, ServerResponse } from "node:http";
import { TRPCError } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import { z } from "zod";
import { customerId, describeIssues, isoDate, money, totalFits } from "../inputs.ts";
import { formatCents, maxCents } from "../money.ts";
import { createCaller } from "../routers/index.ts";
import type { Context } from "../trpc.ts";
import { BodyError, readJsonBody, sendJson } from "./json.ts";

/** A customer id as text, as FastAPI reads an int from a query string (and, leniently, from JSON). */
const customerIdText = z.string().regex(/^\d+$/, "must be a whole number").transform(Number).pipe(customerId);

export const countQuery = z.object({
  customerid: customerIdText.optional().describe("count only this customer's orders"),
});

export const addBody = z
  .object({
    orderdate: isoDate.optional().describe("YYYY-MM-DD; today when left out"),
    customerid: z.union([customerId, customerIdText], { error: "must be a positive whole number" }),
    netamount: money.describe("the net amount, at most two decimals"),
    tax: money,
  })
  .refine((order) => totalFits(order.netamount, order.tax), {
    path: ["tax"],
    message: `netamount + tax must not exceed ${formatCents(maxCents)}`,
  });

export const countResponse = z.object({ count: z.number().int().min(0) });
export const addResponse = z.object({ updated: z.object({ customer: customerId }) });
export const errorResponse = z.object({ detail: z.string() });

/** GET /count[?customerid=N]: the orders.count procedure, in the seed's words. */
export const countRoute = {
  procedure: "orders.count",
  /** Throws a ZodError (a 422) for an invalid query. */
  input(url: URL): { customerId: number } | undefined {
    const raw = url.searchParams.get("customerid");
    if (raw === null) return undefined;
    const { customerid } = countQuery.parse({ customerid: raw });
    return customerid === undefined ? undefined : { customerId: customerid };
  },
  body: (result: { count: number }): z.infer<typeof countResponse> => ({ count: result.count }),
};

export async function getCount(ctx: Context, url: URL, res: ServerResponse): Promise<void> {
  const result = await createCaller(ctx).orders.count(countRoute.input(url));
  sendJson(res, 200, countRoute.body(result));
}

export async function postAdd(
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  bodyLimit: number,
): Promise<void> {
  const body = await readJsonBody(req, bodyLimit);
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new BodyError(422, "Request body must be a JSON object");
  }
  const order = addBody.parse(body);
  await createCaller(ctx).orders.add({
    customerId: order.customerid,
    netAmount: formatCents(order.netamount),
    tax: formatCents(order.tax),
    orderDate: order.orderdate,
    idempotencyKey: singleHeader(req.headers["idempotency-key"]),
  });
  sendJson(res, 200, { updated: { customer: order.customerid } } satisfies z.infer<typeof addResponse>);
}

/** Node joins a repeated header into one string; its type still allows an array. */
const singleHeader = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join(", ") : value);

/** Answers as FastAPI would, {"detail": "..."} with 422 for invalid input, 401, 404, 503; returns the status. */
export function sendRestError(res: ServerResponse, error: unknown): number {
  const [status, detail] = restError(error);
  sendJson(res, status, { detail }, status === 401 ? { "www-authenticate": "Bearer" } : {});
  return status;
}

function restError(error: unknown): [number, string] {
  if (error instanceof BodyError) return [error.status, error.message];
  if (error instanceof z.ZodError) return [422, describeIssues(error)];
  if (!(error instanceof TRPCError)) return [500, "Internal Server Error"];
  if (error.code === "BAD_REQUEST") {
    return [422, error.cause instanceof z.ZodError ? describeIssues(error.cause) : error.message];
  }
  const status = getHTTPStatusCodeFromError(error);
  return [status, status >= 500 && status !== 503 ? "Internal Server Error" : error.message];
}
