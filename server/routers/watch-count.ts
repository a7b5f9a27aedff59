// orders.watchCount: orders.count as a subscription (SSE through
// httpSubscriptionLink). Each event is tracked() with its publication's id,
// so a client that reconnects (Last-Event-ID, which tRPC hands over as
// input.lastEventId) is sent the latest count at once unless it already has it.
import { TRPCError, tracked } from "@trpc/server";
import { watchCountInput } from "../inputs.ts";
import { NoCapacity } from "../live/count-hub.ts";
import { countOutput } from "../outputs.ts";
import { publicProcedure } from "../trpc.ts";
import { declare } from "./documented.ts";

const unavailable = (message: string) => new TRPCError({ code: "SERVICE_UNAVAILABLE", message });

const stream = publicProcedure.input(watchCountInput).subscription(async function* ({ ctx, input, signal }) {
  if (!ctx.live) throw unavailable("Live counts are not served here.");
  let subscription: ReturnType<typeof ctx.live.subscribe>;
  try {
    subscription = ctx.live.subscribe({ customerId: input?.customerId });
  } catch (error) {
    if (error instanceof NoCapacity)
      throw unavailable(`No more live streams here: ${error.message}; try again shortly.`);
    throw error;
  }
  try {
    try {
      // The first count is read after this subscription began (count-hub.ts).
      await subscription.ready();
    } catch {
      throw unavailable(
        subscription.closedByServer
          ? "No more live streams here: the server is shutting down; try again shortly."
          : "The database is unavailable; try again shortly.",
      );
    }
    subscription.resumeFrom(input?.lastEventId);
    for (;;) {
      const { id, count } = await subscription.next(signal);
      yield tracked(id, { count });
    }
  } finally {
    subscription.close();
  }
});

export const watchCount = declare(
  {
    kind: "subscription",
    input: watchCountInput,
    output: countOutput,
    summary: "Count orders, live: the count at once, then each new one (SSE; also GET /count/stream)",
    errors: { SERVICE_UNAVAILABLE: "this instance has MAX_SUBSCRIPTIONS streams open, or no database" },
    example: { customerId: 9999 },
  },
  stream,
);
