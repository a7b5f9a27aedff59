// The floor of an in-process (L1) hit: a bare node:http server answering
// GET /count's JSON from memory once the read barrier passes, as the app's
// hits do, with nothing else of the app. BARRIER=tracking uses the app's own
// TagTracking (its PING through iovalkey on the invalidation connection);
// BARRIER=raw writes "PING\r\n" on a plain socket instead (a probe: what the
// round trip costs without a client library; one PING per event-loop turn in
// which reads arrived, pipelined).
import { createServer } from "node:http";
import { connect } from "node:net";
import { TagTracking } from "../server/cache/tag-tracking.ts";
import { createLogger } from "../server/logger.ts";

const url = new URL(process.env.VALKEY_URL ?? "redis://127.0.0.1:6379");
const body = '{"count":12000}';

function rawBarrier(): () => Promise<void> {
  const socket = connect(Number(url.port || 6379), url.hostname).setNoDelay(true);
  const sent: (() => void)[][] = [];
  let queued: (() => void)[] | undefined;
  let buffered = "";
  socket.on("data", (data) => {
    buffered += data.toString("latin1");
    for (let end = buffered.indexOf("\r\n"); end !== -1; end = buffered.indexOf("\r\n")) {
      buffered = buffered.slice(end + 2); // each reply is one "+PONG" line
      for (const resolve of sent.shift() ?? []) resolve();
    }
  });
  return () =>
    new Promise<void>((resolve) => {
      if (!queued) {
        const batch: (() => void)[] = [];
        queued = batch;
        setImmediate(() => {
          queued = undefined;
          sent.push(batch);
          socket.write("PING\r\n");
        });
      }
      queued.push(resolve);
    });
}

/** Resolves once the feed is live: before that, a barrier passes at once (false) without a round trip. */
async function trackingBarrier(): Promise<() => Promise<unknown>> {
  let becameLive = () => {};
  const live = new Promise<void>((resolve) => {
    becameLive = resolve;
  });
  const tracking = new TagTracking({
    url: url.toString(),
    prefix: `bare-barrier-${process.pid}`,
    log: createLogger("warn"),
    onStateChange: (isLive) => isLive && becameLive(),
  });
  tracking.start();
  await live;
  return () => tracking.barrier();
}

const barrier = process.env.BARRIER === "raw" ? rawBarrier() : await trackingBarrier();
const server = createServer((_req, res) => {
  barrier().then(() => {
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1");
process.once("SIGTERM", () => server.close(() => process.exit(0)));
