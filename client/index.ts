// The typed client: every procedure, its input and its output, checked by the
// compiler. It is typed by client/api.ts, which states the server's router in
// plain types, so an app importing it never type-checks the server's internals.
import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink, type TRPCClient } from "@trpc/client";
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import superjson from "superjson";
import type { AppRouter } from "./api.ts";
import { idempotencyKeyLink, type RetryOptions, safeRetryLink } from "./retry.ts";
import { maxBatchSize } from "./rules.ts";
import { traceHeaders, traceLink } from "./trace-link.ts";

export type {
  AddOrderInput,
  AppRouter,
  CustomerSummary,
  ErrorData,
  MonthlyOrders,
  Order,
  WatchCountInput,
} from "./api.ts";
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
  /**
   * For subscriptions (orders.watchCount) where there is no global EventSource
   * (Node.js before 22): e.g. `EventSource` from the `eventsource` package.
   */
  EventSource?: SubscriptionOptions["EventSource"];
}

type SubscriptionOptions = Parameters<typeof httpSubscriptionLink<AppRouter, EventSourceConstructor>>[0];
/** Any EventSource class: the browser's, or one from a package. */
type EventSourceConstructor = NonNullable<Parameters<typeof httpSubscriptionLink>[0]["EventSource"]>;

export function createClient({ url, token, headers, retry = {}, EventSource }: ClientOptions): Client {
  const sent = { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const base = url.replace(/\/+$/, "");
  const endpoint = base.endsWith("/trpc") ? base : `${base}/trpc`;
  return createTRPCClient<AppRouter>({
    links: [
      traceLink(),
      idempotencyKeyLink(),
      ...(retry === false ? [] : [safeRetryLink(retry)]),
      splitLink({
        // Subscriptions over SSE; the EventSource reconnects by itself, resuming from the last event's id.
        condition: (op) => op.type === "subscription",
        true: httpSubscriptionLink({ url: endpoint, transformer: superjson, EventSource }),
        false: httpBatchLink({
          url: endpoint,
          transformer: superjson,
          headers: ({ opList }) => ({ ...sent, ...traceHeaders(opList) }),
          maxItems: maxBatchSize,
        }),
      }),
    ],
  });
}
