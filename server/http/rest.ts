// The seed app's HTTP API (FastAPI's GET /count and POST /add/), kept for curl
// users. Each route calls the tRPC procedure, so it shares its validation,
// caching and errors; only names and status codes are translated.
import type { IncomingMessage, ServerResponse } from "node:http";
import { TRPCError } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import { ZodError } from "zod";
import { describeIssues } from "../inputs.ts";
import { createCaller } from "../routers/index.ts";
import type { Context } from "../trpc.ts";
import { BodyError, readJsonBody, sendJson } from "./json.ts";

const restNames: Record<string, string> = {
  customerId: "customerid",
  netAmount: "netamount",
  tax: "tax",
  orderDate: "orderdate",
};

// FastAPI parses "9999" in a query string (and, leniently, in JSON) as an int.
const integerLike = (value: unknown) => (typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : value);

/** GET /count[?customerid=N]: the orders.count procedure, in the seed's words. */
export const countRoute = {
  procedure: "orders.count",
  input(url: URL): { customerId: number } | undefined {
    const raw = url.searchParams.get("customerid");
    return raw === null ? undefined : { customerId: integerLike(raw) as number };
  },
  body: (result: { count: number }) => ({ count: result.count }),
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
  if (!body || typeof body !== "object" || Array.isArray(body))
    throw new BodyError(422, "Request body must be a JSON object");
  const fields = body as Record<string, unknown>;
  const order = await createCaller(ctx).orders.add({
    customerId: integerLike(fields.customerid) as number,
    netAmount: fields.netamount as number,
    tax: fields.tax as number,
    orderDate: fields.orderdate as string | undefined,
  });
  sendJson(res, 200, { updated: { customer: order.customerId } });
}

/** Answers as FastAPI would, {"detail": "..."} with 422 for invalid input, 401, 404, 503; returns the status. */
export function sendRestError(res: ServerResponse, error: unknown): number {
  const [status, detail] = restError(error);
  sendJson(res, status, { detail }, status === 401 ? { "www-authenticate": "Bearer" } : {});
  return status;
}

function restError(error: unknown): [number, string] {
  if (error instanceof BodyError) return [error.status, error.message];
  if (!(error instanceof TRPCError)) return [500, "Internal Server Error"];
  if (error.code === "BAD_REQUEST") {
    return [
      422,
      error.cause instanceof ZodError ? describeIssues(error.cause, (f) => restNames[f] ?? f) : error.message,
    ];
  }
  const status = getHTTPStatusCodeFromError(error);
  return [status, status >= 500 && status !== 503 ? "Internal Server Error" : error.message];
}
