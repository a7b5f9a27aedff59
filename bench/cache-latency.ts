// npm run bench:cache — latency of GET /count?customerid=N on a miss, on a
// hit, and while Valkey is cut off (a TCP proxy between the server and Valkey
// drops every connection), one request at a time over keep-alive.
import { scriptArgs } from "../db/script.ts";
import { startApp } from "../server/app.ts";
import { loadConfig } from "../server/config.ts";
import { createLogger } from "../server/logger.ts";
import { TcpProxy } from "../test/support/tcp-proxy.ts";
import { createBenchEnvironment, percentile } from "./environment.ts";

scriptArgs(
  "usage: npm run bench:cache\n  Latency of GET /count?customerid=N on a miss, a hit and with Valkey cut off, REQUESTS (default 500)\n  requests each, on the local PostgreSQL and Valkey.",
  {},
);
const requests = Number(process.env.REQUESTS ?? 500);
const env = await createBenchEnvironment({ customers: 20_000, orders: 12_000 });
const valkey = new URL(env.valkeyUrl);
const proxy = await TcpProxy.start({ host: valkey.hostname, port: Number(valkey.port || 6379) });
const config = loadConfig({
  DATABASE_URL: env.databaseUrl,
  VALKEY_URL: proxy.url(env.valkeyUrl),
  CACHE_PREFIX: env.prefix,
  PORT: "0",
  LOG_LEVEL: "warn",
});
const app = await startApp(config, createLogger("silent"));

async function timeCounts(ids: number[]): Promise<number[]> {
  const times: number[] = [];
  for (const id of ids) {
    const started = performance.now();
    const res = await fetch(`${app.url}/count?customerid=${id}`);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`GET /count answered ${res.status}`);
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b);
}

try {
  if (!(await app.cache.ready(5000))) throw new Error("Valkey did not come up");
  await timeCounts(Array.from({ length: 200 }, (_, i) => 19_000 + i)); // warm-up: JIT, pools
  const ids = Array.from({ length: requests }, (_, i) => 1 + i * 7);
  const miss = await timeCounts(ids);
  const hit = await timeCounts(ids);
  proxy.cut();
  const cut = await timeCounts(ids.map((id) => id + 1));
  const row = (name: string, t: number[]) =>
    `| ${name} | ${percentile(t, 50).toFixed(2)} | ${percentile(t, 99).toFixed(2)} |`;
  console.log(`GET /count?customerid=N, ${requests} requests each, one at a time (ms)\n`);
  console.log("| case | p50 | p99 |\n|---|---|---|");
  console.log(
    [
      row("miss (PostgreSQL, then stored)", miss),
      row("hit (Valkey)", hit),
      row("Valkey cut off (PostgreSQL)", cut),
    ].join("\n"),
  );
  console.log(
    `\nadded p99 while Valkey is cut off: ${(percentile(cut, 99) - percentile(miss, 99)).toFixed(2)} ms against a miss, ` +
      `${(percentile(cut, 99) - percentile(hit, 99)).toFixed(2)} ms against a hit`,
  );
} finally {
  await app.close();
  await proxy.close();
  await env.cleanup();
}
