// Live count streams, written straight to their sockets: GET /count/stream
// (plain SSE, `id:` and `data: {"count":N}`, for curl and EventSource) and
// orders.watchCount's own route (tRPC's SSE events, what httpSubscriptionLink
// reads), and the 503 both answer when this instance has MAX_SUBSCRIPTIONS
// streams open.
//
// Why tRPC's route is answered here: tRPC streams a subscription through a
// chain of async generators and web streams, about 70 KB of heap per open
// stream and a dozen promises per event, against 8 KB here; at 10,000 streams
// that was most of the server's memory and CPU (npm run bench:live). The
// procedure stays the declaration (its types, the client, /docs, callers in
// process), this route writes exactly the events tRPC would
// (test/live-counts.test.ts compares them), and tRPC's own handler still
// answers every other form: a batch, other parameters, an input it refuses,
// a stream that can't start (no capacity, no database), each in its own words.
//
// A stream is written only while its socket takes more: when the client
// doesn't read, nothing is written until it drains, and then only the latest
// count (count-hub.ts). Nothing accumulates for a slow client.
import type { ServerResponse } from "node:http";
import { TRPC_ERROR_CODES_BY_KEY } from "@trpc/server/rpc";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import superjson from "superjson";
import { z } from "zod";
import { watchCountInput } from "../inputs.ts";
import { type CountEvent, type CountHub, type CountInput, NoCapacity } from "../live/count-hub.ts";
import { heartbeatMs, sseOptions } from "../trpc.ts";
import { trpcPrefix } from "./protocol.ts";
import { countQuery, errorResponse } from "./rest.ts";
import { invalid, trpcInput } from "./trpc-input.ts";

const retryAfterSeconds = 1;

const watchCount = "orders.watchCount";

export interface CountStreamOptions {
  hub: CountHub;
  /** tRPC's own handler for orders.watchCount's requests this route leaves to it. */
  trpcHandler: (req: FastifyRequest, reply: FastifyReply, path: string) => Promise<void>;
  /** Test seam: the heartbeat's period. */
  heartbeatMs?: number;
}

/** How a stream's events are written. */
interface Rendering {
  /** Sent once, first. */
  preface: string;
  event(event: CountEvent): string;
  heartbeat: string;
}

/** Renders each publication once, however many subscribers are sent it. */
function renderedOnce(render: (event: CountEvent) => string): (event: CountEvent) => string {
  let last: CountEvent | undefined;
  let text = "";
  return (event) => {
    if (event !== last) {
      last = event;
      text = render(event);
    }
    return text;
  };
}

const plain: Rendering = {
  // EventSource waits this long before reconnecting (after a shutdown, say).
  preface: `retry: ${retryAfterSeconds * 1000}\n\n`,
  event: renderedOnce(({ id, count }) => `id: ${id}\ndata: {"count":${count}}\n\n`),
  heartbeat: ": heartbeat\n\n",
};

/** An event as tRPC's sseStreamProducer writes it: a line per field, then two newlines. */
const trpcEvent = (fields: Record<string, string>) =>
  `${Object.entries(fields)
    .map(([name, value]) => `${name}: ${value}\n`)
    .join("")}\n\n`;

const trpc: Rendering = {
  preface: trpcEvent({ event: "connected", data: JSON.stringify(sseOptions.client) }),
  event: renderedOnce(({ id, count }) => trpcEvent({ data: JSON.stringify(superjson.serialize({ count })), id })),
  heartbeat: trpcEvent({ event: "ping", data: "" }),
};

/** orders.watchCount's input in its plain form (one `input` parameter, valid), as tRPC would read it; undefined: any other form. */
function plainTrpcInput(
  req: FastifyRequest,
): { customerId?: number | undefined; lastEventId?: string | null } | undefined {
  const query = new URLSearchParams(req.url.slice(req.url.indexOf("?") + 1 || req.url.length));
  const names = [...query.keys()];
  if (names.some((name) => name !== "input") || names.length > 1) return undefined;
  const raw = trpcInput(query.get("input") ?? undefined);
  if (raw === invalid) return undefined;
  // tRPC hands a reconnecting EventSource's Last-Event-ID to the procedure as input.lastEventId
  // (into an object input, or as the input when there is none; any other input is left as it is).
  const last = req.headers["last-event-id"];
  const isObject = typeof raw === "object" && raw !== null && !Array.isArray(raw);
  const merged = last && (isObject || raw == null) ? { ...(isObject ? raw : {}), lastEventId: last } : raw;
  const parsed = watchCountInput.safeParse(merged);
  return parsed.success ? (parsed.data ?? {}) : undefined;
}

/**
 * Opens a stream of `input`'s count on `reply`: the current count as read
 * after the stream arrived, then the latest whenever it changes and the socket
 * takes more. Returns why not (nothing written) when it can't start.
 */
async function stream(
  hub: CountHub,
  reply: FastifyReply,
  input: CountInput,
  lastEventId: string | null | undefined,
  rendering: Rendering,
  period: number,
): Promise<string | undefined> {
  let flush = () => {};
  let subscription: ReturnType<CountHub["subscribe"]>;
  try {
    subscription = hub.subscribe(input, () => flush());
  } catch (error) {
    if (!(error instanceof NoCapacity)) throw error;
    return `No more live streams here: ${error.message}; try again shortly.`;
  }
  const res: ServerResponse = reply.raw;
  let heartbeat: NodeJS.Timeout | undefined;
  // From the start: a client may leave while its count is still loading.
  res.once("close", () => {
    clearInterval(heartbeat);
    subscription.close();
  });
  let loaded = true;
  try {
    await subscription.ready();
  } catch {
    loaded = false;
  }
  // Gone meanwhile: nothing to say (and not to be handed on: a subscription with no one to close it).
  if (res.destroyed) {
    reply.hijack();
    return undefined;
  }
  if (!loaded) {
    subscription.close();
    // Its first count is read after it arrived (count-hub.ts): without that read there is nothing to send.
    return subscription.closedByServer
      ? "No more live streams here: the server is shutting down; try again shortly."
      : "The database is unavailable; try again shortly.";
  }
  subscription.resumeFrom(lastEventId);
  reply.hijack();
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    // no-transform: a compressing proxy would hold events back to fill its blocks.
    "cache-control": "no-cache, no-store, no-transform",
    // nginx and the like pass events through at once.
    "x-accel-buffering": "no",
    // Its connection ends with it: kept alive, a drain would wait for it to idle out.
    connection: "close",
  });
  res.write(rendering.preface);
  heartbeat = setInterval(() => {
    if (!res.writableNeedDrain) res.write(rendering.heartbeat);
  }, period);
  flush = () => {
    if (res.writableEnded || res.destroyed) return;
    if (subscription.closedByServer) {
      res.end();
      return;
    }
    if (res.writableNeedDrain) return; // the drain event flushes the latest count
    const event = subscription.take();
    if (event) res.write(rendering.event(event));
  };
  res.on("drain", flush);
  flush();
  return undefined;
}

export function countStreamRoutes(
  app: FastifyInstance,
  { hub, trpcHandler, heartbeatMs: period = heartbeatMs }: CountStreamOptions,
) {
  /** The tRPC subscription's path: refused here, before tRPC answers 200 and streams an error. */
  const watchCountPath = new RegExp(`^${trpcPrefix}(?:[^?]*,)?${watchCount.replace(".", "\\.")}(?:[,?]|$)`);
  app.addHook("onRequest", (req, reply, done) => {
    if (hub.full && watchCountPath.test(req.url)) {
      return void reply
        .code(503)
        .header("retry-after", String(retryAfterSeconds))
        .send({
          error: {
            json: {
              message: "No more live streams here (MAX_SUBSCRIPTIONS); try again shortly.",
              code: TRPC_ERROR_CODES_BY_KEY.SERVICE_UNAVAILABLE,
              data: { code: "SERVICE_UNAVAILABLE", httpStatus: 503, path: watchCount },
            },
          },
        });
    }
    done();
  });

  // Static, so it is found before tRPC's /trpc/:path; a HEAD still goes to tRPC.
  app.get(`${trpcPrefix}${watchCount}`, { exposeHeadRoute: false, schema: { hide: true } }, async (req, reply) => {
    const input = plainTrpcInput(req);
    const refused = input && (await stream(hub, reply, input, input.lastEventId, trpc, period));
    if (input && refused === undefined) return;
    await trpcHandler(req, reply, watchCount);
  });

  app.withTypeProvider<ZodTypeProvider>().get(
    "/count/stream",
    {
      schema: {
        summary: "The order count, live (Server-Sent Events)",
        description: [
          "`text/event-stream`: at once the current count, then each new count after a write that changes it",
          '(by any instance, psql or a loader), as `id: <id>` and `data: {"count":N}` lines. Under a burst of',
          "writes, at most one event per 50 ms (less often for a count with very many subscribers here: 5,000 events/s in all),",
          "always ending with the final count; a client that reads slowly",
          "gets the latest count, not a backlog. A comment line every 15 s keeps proxies from closing it. Send",
          "`Last-Event-ID` when reconnecting (EventSource does): the count is sent again only if it changed.",
          "503 with Retry-After when this instance has MAX_SUBSCRIPTIONS streams open or is shutting down;",
          "on shutdown the stream ends and EventSource reconnects (to another instance).",
        ].join(" "),
        querystring: countQuery,
        produces: ["text/event-stream"],
        response: {
          200: z.string().describe('text/event-stream: `id: …` and `data: {"count":N}` events'),
          422: errorResponse.describe("customerid is not a positive whole number"),
          503: errorResponse.describe("too many streams (MAX_SUBSCRIPTIONS), shutting down, or no database"),
        },
      },
    },
    async (req, reply) => {
      const last = req.headers["last-event-id"];
      const refused = await stream(
        hub,
        reply,
        { customerId: req.query.customerid },
        typeof last === "string" ? last : undefined,
        plain,
        period,
      );
      if (refused === undefined) return;
      return reply.code(503).header("retry-after", String(retryAfterSeconds)).send({ detail: refused });
    },
  );
}
