// The typed client: every procedure, its input and its output, checked by the
// compiler. It is typed by client/api.ts, which states the server's router in
// plain types, so an app importing it never type-checks the server's internals.
import { createTRPCClient, httpBatchLink, type TRPCClient } from "@trpc/client";
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import superjson from "superjson";
import type { AppRouter } from "./api.ts";
import { idempotencyKeyLink, type RetryOptions, safeRetryLink } from "./retry.ts";
import { maxBatchSize } from "./rules.ts";
import { traceHeaders, traceLink } from "./trace-link.ts";

export type { AddOrderInput, AppRouter, CustomerSummary, ErrorData, MonthlyOrders, Order } from "./api.ts";
export type { RetryOptions };
export type RouterInputs = inferRouterInputs<AppRouter>;
export type RouterOutputs = inferRouterOutputs<AppRouter>;
export type Client = TRPCClient<AppRouter>;

export interface ClientOptions {
  /** The server's base URL (http://127.0.0.1:8000) or its tRPC endpoint (…/trpc). */
  url: string;
  /** The server's API_TOKEN, sent as a bearer token (writes need it when the server has one). */
  token?: string | undefined;
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
  /**
   * Retries of calls answered 503 or 504 or not answered at all; `false` for none.
   * orders.add is retried with the same idempotency key, so it is stored once.
   */
  retry?: RetryOptions | false;
}

export function createClient({ url, token, headers, retry = {} }: ClientOptions): Client {
  const sent = { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const base = url.replace(/\/+$/, "");
  return createTRPCClient<AppRouter>({
    links: [
      traceLink(),
      idempotencyKeyLink(),
      ...(retry === false ? [] : [safeRetryLink(retry)]),
      httpBatchLink({
        url: base.endsWith("/trpc") ? base : `${base}/trpc`,
        transformer: superjson,
        headers: ({ opList }) => ({ ...sent, ...traceHeaders(opList) }),
        maxItems: maxBatchSize,
      }),
    ],
  });
}
