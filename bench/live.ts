// npm run bench:live [-- --subscriptions 10000 --seconds 8 --latency-seconds 20]
//
// Live counts at scale, on one server process: 10,000 concurrent SSE
// subscriptions (half orders.watchCount through tRPC, half GET /count/stream;
// nine in ten on customers' counts, three per customer, one in ten on the
// total) while orders are written at 100/s through POST /add/. Measures:
//   - push latency, from each write's acknowledgement (the writer got its
//     200) to each of that customer's subscribers holding the new count
//     (0 when the event came before the acknowledgement did), and to a
//     hundred of the total's subscribers holding a total that counts at least
//     every write acknowledged by then;
//   - the server's peak resident memory;
//   - cached GET /count throughput (wrk) with the streams open and the writes
//     flowing, against the same without the streams, in the same run.
// Each customer has at most one write in flight, so its count after the k-th
// write is known exactly. Also a scenario of `npm run bench` (run.ts).
import { spawnSync } from "node:child_process";
import { connect, type Socket } from "node:net";
import { scriptArgs } from "../db/script.ts";
import { startServerProcess } from "../test/support/server-process.ts";
import { type BenchEnvironment, createBenchEnvironment, percentile } from "./environment.ts";
import { type LoadResult, rssMb, runLoad } from "./load.ts";

export interface LiveReport {
  subscriptions: number;
  writesPerSecond: number;
  /** Push latency over the quiet phase (streams and writes only) and under wrk. */
  latency: { p50: number; p99: number; max: number; samples: number; missed: number };
  latencyUnderLoad: { p50: number; p99: number; max: number; samples: number; missed: number };
  /** The same to subscribers of the total (which every write changes). */
  totalLatency: { p50: number; p99: number; max: number; samples: number };
  totalLatencyUnderLoad: { p50: number; p99: number; max: number; samples: number };
  peakRssMb: number;
  rssBeforeStreamsMb: number;
  /** Right after the streams opened, before any write. */
  rssStreamsOpenMb: number;
  /** Cached GET /count, no writes: without the streams, and with them open (heartbeats only). */
  withoutStreams: LoadResult;
  withStreams: LoadResult;
  /** withStreams / withoutStreams requests per second. */
  throughputRatio: number;
  /** The same while the writes flow (each write retires the cached total: most requests then wait on its reload). */
  withoutStreamsWriting: LoadResult;
  withStreamsWriting: LoadResult;
  throughputRatioWriting: number;
  openSeconds: number;
  /** Server CPU share (of one core) with the streams open and writes flowing, no wrk. */
  serverCpu: number;
  totalsCorrect: boolean;
  /** Writes not acknowledged (their customers are then left out of the latency). */
  writeErrors: number;
}

/** One subscriber's socket: the latest count it holds and when each came. */
class Subscriber {
  count = -1;
  private buffer = "";
  private readonly socket: Socket;
  readonly first: Promise<void>;
  onCount: (count: number, at: number) => void = () => {};

  constructor(port: number, path: string) {
    this.socket = connect(port, "127.0.0.1");
    this.socket.setEncoding("utf8");
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
    this.first = new Promise((resolve, reject) => {
      this.socket.once("error", reject);
      this.socket.once("close", () => reject(new Error(`stream ${path} closed`)));
      this.socket.on("data", (chunk: string) => {
        const at = performance.now();
        this.buffer += chunk;
        let line = this.buffer.indexOf("\n");
        while (line !== -1) {
          const text = this.buffer.slice(0, line);
          this.buffer = this.buffer.slice(line + 1);
          // data: {"count":N} (plain) or data: {"json":{"count":N}} (tRPC, superjson)
          const match = text.startsWith("data: ") ? /"count":(\d+)/.exec(text) : null;
          if (match) {
            this.count = Number(match[1]);
            this.onCount(this.count, at);
            resolve();
          }
          line = this.buffer.indexOf("\n");
        }
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

interface Watch {
  customerId: number;
  subscribers: Subscriber[];
  /** The count after the latest acknowledged write, and when it was acknowledged. */
  acked?: { count: number; at: number; waiting: Set<Subscriber> };
  busy: boolean;
  /** A write to it went unanswered: it gets no more writes. */
  unknown?: boolean;
}

function summary(samples: number[], missed: number) {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
    samples: samples.length,
    missed,
  };
}

async function cpuSeconds(pid: number): Promise<number> {
  const { readFile } = await import("node:fs/promises");
  const stat = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]?.split(" ") ?? [];
  // utime and stime, fields 14 and 15 of /proc/<pid>/stat (11 and 12 after the command name)
  return (Number(stat[11]) + Number(stat[12])) / 100;
}

export async function benchLive(
  env: BenchEnvironment,
  options: { subscriptions: number; seconds: number; latencySeconds: number; writesPerSecond: number },
): Promise<LiveReport> {
  const { subscriptions, seconds, writesPerSecond } = options;
  const server = await startServerProcess(
    {
      DATABASE_URL: env.databaseUrl,
      VALKEY_URL: env.valkeyUrl,
      CACHE_PREFIX: env.prefix,
      LOG_LEVEL: "warn",
      MAX_SUBSCRIPTIONS: String(subscriptions),
    },
    ["node", ...(process.env.LIVE_NODE_FLAGS ?? "").split(" ").filter(Boolean), "dist/server/main.js"],
  );
  const pid = server.child.pid as number;
  const port = Number(new URL(server.url).port);
  const all: Subscriber[] = [];
  try {
    // The watched customers: three subscribers each; a tenth of all subscribers watch the total.
    const totals = Math.round(subscriptions / 10);
    const perCustomer = 3;
    const watches: Watch[] = Array.from({ length: Math.floor((subscriptions - totals) / perCustomer) }, (_, i) => ({
      customerId: 1 + ((i * 7) % 20_000),
      subscribers: [],
      busy: false,
    }));
    const path = (customerId: number | undefined, trpc: boolean) =>
      trpc
        ? `/trpc/orders.watchCount?input=${encodeURIComponent(JSON.stringify({ json: customerId === undefined ? {} : { customerId } }))}`
        : `/count/stream${customerId === undefined ? "" : `?customerid=${customerId}`}`;

    let writes = 0;
    let writeErrors = 0;
    let latencies: number[] = [];
    let missed = 0;
    // The total after each acknowledged write (a lower bound: the writes acknowledged by then), and
    // how far each sampled total subscriber has got through them.
    let ackedTotal = Number.NaN;
    const totalAcks: { total: number; at: number }[] = [];
    const totalSampled: { subscriber: Subscriber; next: number }[] = [];
    let totalLatencies: number[] = [];
    const catchUp = (sampled: { subscriber: Subscriber; next: number }, at: number) => {
      for (
        let ack = totalAcks[sampled.next];
        ack && ack.total <= sampled.subscriber.count;
        ack = totalAcks[++sampled.next]
      )
        totalLatencies.push(Math.max(0, at - ack.at));
    };
    let writing = false;
    const writer = async () => {
      // One write every 1/writesPerSecond s, on schedule (not after the previous one's answer).
      const interval = 1000 / writesPerSecond;
      let next = performance.now();
      const inFlight = new Set<Promise<void>>();
      while (writing) {
        const idle = watches.filter((w) => !w.busy && !w.unknown);
        const watch = idle[Math.floor(Math.random() * idle.length)];
        if (watch) {
          watch.busy = true;
          // Its count before this write: no other write to it is in flight.
          const before = watch.acked?.count ?? watch.subscribers[0]?.count;
          const write = (async () => {
            const res = await fetch(`${server.url}/add/`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ customerid: watch.customerId, netamount: 10, tax: 0.8 }),
            }).catch(() => undefined);
            await res?.text();
            const at = performance.now();
            if (res?.status !== 200) {
              // Not acknowledged: it may or may not be stored, so this customer's count is no longer known.
              writeErrors++;
              watch.unknown = true;
              return;
            }
            writes++;
            watch.busy = false;
            if (!Number.isNaN(ackedTotal)) {
              totalAcks.push({ total: ++ackedTotal, at });
              for (const sampled of totalSampled) catchUp(sampled, at);
            }
            if (before === undefined) return; // no streams yet
            // A missed earlier one (its subscribers never got its count) counts as missed.
            if (watch.acked) missed += watch.acked.waiting.size;
            const count = before + 1;
            const waiting = new Set(watch.subscribers.filter((s) => s.count < count));
            for (const subscriber of watch.subscribers) if (!waiting.has(subscriber)) latencies.push(0);
            watch.acked = { count, at, waiting };
          })();
          inFlight.add(write);
          void write.finally(() => inFlight.delete(write));
        }
        next += interval;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
      }
      await Promise.all(inFlight);
    };
    const startWriting = () => {
      writing = true;
      return writer();
    };

    const countLoad = () =>
      runLoad({ url: server.url, requests: [{ path: "/count" }], hot: [1], customers: 20_000, pid, seconds });
    // Without streams: cached GET /count alone, then while the writes flow.
    const withoutStreams = await countLoad();
    let done = startWriting();
    const withoutStreamsWriting = await countLoad();
    writing = false;
    await done;
    const rssBeforeStreamsMb = await rssMb(pid);

    // Open them all, a few hundred at a time, each until its first count.
    const opening = performance.now();
    const specs: { customerId?: number; watch?: Watch }[] = [
      ...watches.flatMap((watch) =>
        Array.from({ length: perCustomer }, () => ({ customerId: watch.customerId, watch })),
      ),
      ...Array.from({ length: subscriptions - watches.length * perCustomer }, () => ({})),
    ];
    for (let i = 0; i < specs.length; i += 100) {
      const batch = specs.slice(i, i + 100).map(({ customerId, watch }, j) => {
        const subscriber = new Subscriber(port, path(customerId, (i + j) % 2 === 0));
        all.push(subscriber);
        if (!watch && totalSampled.length < 100) {
          const sampled = { subscriber, next: 0 };
          totalSampled.push(sampled);
          subscriber.onCount = (_, at) => catchUp(sampled, at);
        }
        if (watch) {
          watch.subscribers.push(subscriber);
          subscriber.onCount = (count, at) => {
            const acked = watch.acked;
            if (acked && count >= acked.count && acked.waiting.delete(subscriber))
              latencies.push(Math.max(0, at - acked.at));
          };
        }
        return subscriber.first;
      });
      await Promise.all(batch);
    }
    const openSeconds = (performance.now() - opening) / 1000;
    const rssStreamsOpenMb = await rssMb(pid);

    let peak = await rssMb(pid);
    const sampler = setInterval(async () => {
      peak = Math.max(peak, await rssMb(pid).catch(() => 0));
    }, 100);
    // With the streams open and idle (heartbeats only): cached GET /count alone.
    const withStreams = await countLoad();

    // Quiet phase: streams open, writes flowing, no other load. No write is in flight now.
    const { default: postgres } = await import("postgres");
    const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
    const totalNow = async () => Number((await sql`SELECT count(*) AS n FROM orders`)[0]?.n);
    ackedTotal = await totalNow();
    for (const sampled of totalSampled) sampled.next = totalAcks.length;
    totalLatencies = [];
    latencies = [];
    writes = 0;
    missed = 0;
    const cpuBefore = await cpuSeconds(pid);
    const quietStarted = performance.now();
    done = startWriting();
    await new Promise((resolve) => setTimeout(resolve, options.latencySeconds * 1000));
    const serverCpu = (await cpuSeconds(pid)) - cpuBefore;
    const quietSeconds = (performance.now() - quietStarted) / 1000;
    const latency = summary(latencies, missed);
    const totalLatency = summary(totalLatencies, 0);
    const quietWrites = writes;

    // Under load: the same, plus wrk on cached GET /count.
    latencies = [];
    totalLatencies = [];
    missed = 0;
    const withStreamsWriting = await countLoad();
    const latencyUnderLoad = summary(latencies, missed);
    const totalLatencyUnderLoad = summary(totalLatencies, 0);
    writing = false;
    await done;
    clearInterval(sampler);
    peak = Math.max(peak, await rssMb(pid));

    // Every total subscriber ends at PostgreSQL's total (once the last writes have been pushed).
    const expected = await totalNow();
    await sql.end();
    const deadline = performance.now() + 5000;
    const totalSubscribers = all.slice(watches.length * perCustomer);
    while (performance.now() < deadline && totalSubscribers.some((s) => s.count !== expected)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return {
      subscriptions: all.length,
      writesPerSecond: quietWrites / quietSeconds,
      latency,
      latencyUnderLoad,
      totalLatency,
      totalLatencyUnderLoad,
      peakRssMb: peak,
      rssBeforeStreamsMb,
      rssStreamsOpenMb,
      withoutStreams,
      withStreams,
      throughputRatio: withStreams.requestsPerSecond / withoutStreams.requestsPerSecond,
      withoutStreamsWriting,
      withStreamsWriting,
      throughputRatioWriting: withStreamsWriting.requestsPerSecond / withoutStreamsWriting.requestsPerSecond,
      openSeconds,
      serverCpu: serverCpu / quietSeconds,
      totalsCorrect: totalSubscribers.every((s) => s.count === expected),
      writeErrors,
    };
  } finally {
    for (const subscriber of all) subscriber.close();
    await server.stop();
  }
}

export function describeLive(report: LiveReport): string[] {
  const ms = (x: number) => x.toFixed(1);
  const rps = (load: LoadResult) => Math.round(load.requestsPerSecond).toLocaleString("en-US");
  return [
    `live counts: ${report.subscriptions.toLocaleString("en-US")} SSE subscriptions on one instance (half tRPC, half plain; 90 % on customers, 10 % on the total), opened in ${report.openSeconds.toFixed(1)} s, writes at ${report.writesPerSecond.toFixed(0)}/s (${report.writeErrors} unanswered)`,
    `live counts: push latency from a write's acknowledgement to its customer's subscribers: p50 ${ms(report.latency.p50)} ms, p99 ${ms(report.latency.p99)} ms, max ${ms(report.latency.max)} ms (${report.latency.samples} deliveries; ${report.latency.missed} skipped to a later count, coalesced); under wrk at the same time: p50 ${ms(report.latencyUnderLoad.p50)}, p99 ${ms(report.latencyUnderLoad.p99)} ms`,
    `live counts: push latency to the total's subscribers (a hundred sampled; every write changes the total): p50 ${ms(report.totalLatency.p50)} ms, p99 ${ms(report.totalLatency.p99)} ms, max ${ms(report.totalLatency.max)} ms (${report.totalLatency.samples} deliveries); under wrk: p50 ${ms(report.totalLatencyUnderLoad.p50)}, p99 ${ms(report.totalLatencyUnderLoad.p99)} ms`,
    `live counts: server RSS ${report.rssBeforeStreamsMb.toFixed(0)} MB before the streams, ${report.rssStreamsOpenMb.toFixed(0)} MB once open, peak ${report.peakRssMb.toFixed(0)} MB with the writes flowing; server CPU ${(report.serverCpu * 100).toFixed(0)} % of a core with the streams open and the writes flowing`,
    `live counts: cached GET /count with the streams open ${rps(report.withStreams)}/s, without ${rps(report.withoutStreams)}/s: ${(report.throughputRatio * 100).toFixed(0)} %; while the writes flow (each one retires the cached total) ${rps(report.withStreamsWriting)}/s against ${rps(report.withoutStreamsWriting)}/s: ${(report.throughputRatioWriting * 100).toFixed(0)} %`,
    `live counts: every total subscriber ends at PostgreSQL's total: ${report.totalsCorrect ? "yes" : "NO"}`,
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const values = scriptArgs(
    [
      "usage: npm run bench:live [-- --subscriptions 10000 --seconds 8 --latency-seconds 20 --writes-per-second 100]",
      "  Opens that many SSE subscriptions on one server process while orders are written at that rate, and",
      "  measures push latency, resident memory and cached GET /count throughput with and without the streams.",
    ].join("\n"),
    {
      subscriptions: { type: "string", default: "10000" },
      seconds: { type: "string", default: "8" },
      "latency-seconds": { type: "string", default: "20" },
      "writes-per-second": { type: "string", default: "100" },
    },
  );
  const build = spawnSync("npm", ["run", "-s", "build"], { stdio: "inherit" });
  if (build.status !== 0) throw new Error("npm run build failed");
  const env = await createBenchEnvironment({ customers: 20_000, orders: 12_000 });
  try {
    const report = await benchLive(env, {
      subscriptions: Number(values.subscriptions),
      seconds: Number(values.seconds),
      latencySeconds: Number(values["latency-seconds"]),
      writesPerSecond: Number(values["writes-per-second"]),
    });
    for (const line of describeLive(report)) console.log(line);
    console.log(JSON.stringify(report, null, 2));
  } finally {
    await env.cleanup();
  }
}
