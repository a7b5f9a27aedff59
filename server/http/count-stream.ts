// GET /count/stream[?customerid=N]: orders.watchCount as plain SSE for curl
// and EventSource (`id:` and `data: {"count":N}`), and the 503 both live
// routes answer when this instance has MAX_SUBSCRIPTIONS streams open.
//
// A stream is written only while its socket takes more: when the client
// doesn't read, nothing is written until it drains, and then only the latest
// count (count-hub.ts). Nothing accumulates for a slow client.
import { TRPC_ERROR_CODES_BY_KEY } from "@trpc/server/rpc";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { type CountHub, NoCapacity } from "../live/count-hub.ts";
import { heartbeatMs } from "../trpc.ts";
import { countQuery, errorResponse } from "./rest.ts";

const retryAfterSeconds = 1;

export interface CountStreamOptions {
  hub: CountHub;
  /** Test seam: the heartbeat's period. */
  heartbeatMs?: number;
}

/** The tRPC subscription's path: refused here, before tRPC answers 200 and streams an error. */
const watchCountPath = /^\/trpc\/(?:[^?]*,)?orders\.watchCount(?:[,?]|$)/;

export function countStreamRoutes(
  app: FastifyInstance,
  { hub, heartbeatMs: period = heartbeatMs }: CountStreamOptions,
) {
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
              data: { code: "SERVICE_UNAVAILABLE", httpStatus: 503, path: "orders.watchCount" },
            },
          },
        });
    }
    done();
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
      let flush = () => {};
      let subscription: ReturnType<CountHub["subscribe"]>;
      try {
        subscription = hub.subscribe({ customerId: req.query.customerid }, () => flush());
      } catch (error) {
        if (!(error instanceof NoCapacity)) throw error;
        return reply
          .code(503)
          .header("retry-after", String(retryAfterSeconds))
          .send({ detail: `No more live streams here: ${error.message}; try again shortly.` });
      }
      try {
        await subscription.ready();
      } catch {
        subscription.close();
        return reply
          .code(503)
          .header("retry-after", String(retryAfterSeconds))
          .send({ detail: "The database is unavailable; try again shortly." });
      }
      const last = req.headers["last-event-id"];
      subscription.resumeFrom(typeof last === "string" ? last : undefined);

      const res = reply.hijack().raw;
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-store",
        // nginx and the like pass events through at once.
        "x-accel-buffering": "no",
        // Its connection ends with it: kept alive, a drain would wait for it to idle out.
        connection: "close",
      });
      // EventSource waits this long before reconnecting (after a shutdown, say).
      res.write(`retry: ${retryAfterSeconds * 1000}\n\n`);
      const heartbeat = setInterval(() => {
        if (!res.writableNeedDrain) res.write(": heartbeat\n\n");
      }, period);
      flush = () => {
        if (res.writableEnded || res.destroyed) return;
        if (subscription.closedByServer) {
          res.end();
          return;
        }
        if (res.writableNeedDrain) return; // the drain event flushes the latest count
        const event = subscription.take();
        if (event) res.write(`id: ${event.id}\ndata: {"count":${event.count}}\n\n`);
      };
      res.on("drain", flush);
      res.once("close", () => {
        clearInterval(heartbeat);
        subscription.close();
      });
      flush();
    },
  );
}
