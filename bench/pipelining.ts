// Three clients pipeline GET /count as fast as they can and never read the
// answers, while a well-behaved client makes requests one at a time: the
// server's peak resident memory and the well-behaved client's latency.
// Goal: under 300 MB and p99 under 50 ms.
//   npm run -s build && node --import tsx bench/pipelining.ts [project directory]
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect, type Socket } from "node:net";
import { createBenchEnvironment, percentile } from "./environment.ts";
import { startIn, stop } from "./spawn-server.ts";

const directory = process.argv[2] ?? ".";
const seconds = Number(process.env.BENCH_SECONDS ?? 10);

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;

/** Writes pipelined requests whenever the socket takes them; never reads. */
function flood(port: number): Socket {
  const socket = connect(port, "127.0.0.1");
  socket.pause();
  socket.on("error", () => {});
  const chunk = Buffer.from("GET /count HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(256));
  const write = () => {
    while (!socket.destroyed && socket.write(chunk));
  };
  socket.on("connect", write);
  socket.on("drain", write);
  return socket;
}

function timedGet(url: string, agent: Agent): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(`${url}/count`, { agent }, (res) => {
      res.resume();
      res.on("end", () => resolve(performance.now() - started));
    });
    req.on("error", reject);
    req.end();
  });
}

const env = await createBenchEnvironment({ customers: 20_000, orders: 12_000 });
const server = await startIn(["node", "dist/server/main.js"], directory, {
  DATABASE_URL: env.databaseUrl,
  VALKEY_URL: env.valkeyUrl,
  CACHE_PREFIX: env.prefix,
});
const pid = server.child.pid as number;
try {
  const baseline = rssMb(pid);
  const floods = [flood(server.port), flood(server.port), flood(server.port)];
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMb(pid));
  }, 100);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const latencies: number[] = [];
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until) latencies.push(await timedGet(server.url, agent));
  clearInterval(sampler);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const hits = /cache_requests_total\{procedure="orders.count",result="hit"\} (\d+)/.exec(metrics)?.[1];
  for (const socket of floods) socket.destroy();
  agent.destroy();
  latencies.sort((a, b) => a - b);
  console.log(
    `three never-reading pipelining clients for ${seconds} s: server RSS ${baseline.toFixed(0)} MB → peak ${peak.toFixed(0)} MB; ` +
      `another client: ${latencies.length} requests, p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms; ${hits} hits answered in all`,
  );
} finally {
  await stop(server.child);
  await env.cleanup();
}
