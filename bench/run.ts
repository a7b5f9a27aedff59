// npm run bench [-- --orders 1000000] [--seconds 8] [--profile]
//
// Sets up its own database and key prefix on the local PostgreSQL and Valkey,
// starts the server as a separate process, and measures each scenario with
// autocannon (32 connections) after a warm-up. Writes bench/results/<date>.json,
// .md and .svg (and latest.*), and prints the table.
import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { freePort, type ServerProcess, startServerProcess } from "../test/support/server-process.ts";
import { renderChart } from "./chart.ts";
import { type BenchEnvironment, createBenchEnvironment } from "./environment.ts";
import { type LoadResult, runLoad } from "./load.ts";

const { values } = parseArgs({
  options: {
    orders: { type: "string" },
    seconds: { type: "string", default: "8" },
    profile: { type: "boolean", default: false },
  },
});
const seconds = Number(values.seconds);
const large = values.orders ? Number(values.orders) : undefined;
const customers = 20_000;
const hot = Array.from({ length: 100 }, (_, i) => 1 + i * 197);
const started = Date.now();

interface Row extends LoadResult {
  name: string;
  dataset: string;
  ratio: number;
}
const rows: Row[] = [];
const notes: string[] = [];

const cycle = <T>(items: readonly T[]) => {
  let i = 0;
  return () => items[i++ % items.length] as T;
};

async function serve(env: BenchEnvironment, extra: Record<string, string> = {}): Promise<ServerProcess> {
  const flags = values.profile ? ["--cpu-prof", "--cpu-prof-dir", "bench/results/profiles"] : [];
  return startServerProcess(
    { DATABASE_URL: env.databaseUrl, VALKEY_URL: env.valkeyUrl, CACHE_PREFIX: env.prefix, LOG_LEVEL: "warn", ...extra },
    ["node", ...flags, "dist/server/main.js"],
  );
}

async function measure(
  name: string,
  dataset: string,
  server: ServerProcess,
  next: Parameters<typeof runLoad>[0]["next"],
) {
  const result = await runLoad({ url: server.url, next, pid: server.child.pid as number, seconds });
  const ceiling = rows[0]?.requestsPerSecond ?? result.requestsPerSecond;
  const row = { name, dataset, ...result, ratio: result.requestsPerSecond / ceiling };
  rows.push(row);
  console.log(
    `${name} [${dataset}]: ${Math.round(row.requestsPerSecond)}/s (${(row.ratio * 100).toFixed(0)}% of ceiling), ` +
      `p50 ${row.p50} ms, p99 ${row.p99} ms, RSS ${row.peakRssMb.toFixed(0)} MB, errors ${row.errors}, non-2xx ${row.non2xx}`,
  );
}

/** Afterwards, every hot customer's count and the total, as the API serves them, must be PostgreSQL's. */
async function staleReads(env: BenchEnvironment, server: ServerProcess): Promise<number> {
  const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
  try {
    let stale = 0;
    for (const id of [undefined, ...hot]) {
      const res = await fetch(`${server.url}/count${id === undefined ? "" : `?customerid=${id}`}`);
      const { count } = (await res.json()) as { count: number };
      const [row] = await sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM orders WHERE ${id === undefined ? sql`true` : sql`customerid = ${id}`}`;
      if (count !== row?.n) stale++;
    }
    return stale;
  } finally {
    await sql.end();
  }
}

// The server runs as it does in production: compiled, without a TypeScript loader.
const build = spawnSync("npm", ["run", "-s", "build"], { stdio: "inherit" });
if (build.status !== 0) throw new Error("npm run build failed");
const env = await createBenchEnvironment({ customers, orders: 12_000 });
const servers: ServerProcess[] = [];
try {
  const bare = await startServerProcess({}, ["node", "--import", "tsx", "bench/bare-server.ts"]);
  servers.push(bare);
  await measure("bare node:http (ceiling)", "-", bare, () => ({ path: "/count" }));
  await bare.stop();

  const app = await serve(env);
  servers.push(app);
  await measure("GET /count, cached", "12k", app, () => ({ path: "/count" }));
  await measure("GET /trpc/orders.count, cached", "12k", app, () => ({ path: "/trpc/orders.count" }));
  const hotPaths = cycle(hot.map((id) => `/count?customerid=${id}`));
  await measure("per-customer counts, 100 hot customers, cached", "12k", app, () => ({ path: hotPaths() }));
  await measure("per-customer counts, random customers, uncached", "12k", app, () => ({
    path: `/count?customerid=${1 + Math.floor(Math.random() * customers)}`,
    headers: { "cache-control": "no-store" },
  }));
  let request = 0;
  await measure("95% reads / 5% writes", "12k", app, () => {
    const customer = hot[Math.floor(Math.random() * hot.length)] as number;
    if (++request % 20 === 0) {
      return { path: "/add/", method: "POST", body: `{"customerid":${customer},"netamount":10,"tax":0.83}` };
    }
    return { path: request % 10 === 1 ? "/count" : `/count?customerid=${customer}` };
  });
  const stale = await staleReads(env, app);
  notes.push(
    `stale reads after the 95/5 mix (every hot customer's count and the total, checked against PostgreSQL): ${stale}`,
  );
  await app.stop();

  const unreachable = `redis://127.0.0.1:${await freePort()}`;
  const cutOff = await serve(env, { VALKEY_URL: unreachable });
  servers.push(cutOff);
  await measure("GET /count, Valkey cut off (PostgreSQL answers)", "12k", cutOff, () => ({ path: "/count" }));
  await cutOff.stop();

  if (large) {
    const loadStarted = performance.now();
    const big = await createBenchEnvironment({ customers, orders: large });
    notes.push(
      `database with ${large.toLocaleString("en-US")} generated orders created, migrated and seeded in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s`,
    );
    try {
      const bigApp = await serve(big);
      servers.push(bigApp);
      await measure("GET /count, cached", `${large / 1e6}M`, bigApp, () => ({ path: "/count" }));
      await measure("per-customer counts, 100 hot customers, cached", `${large / 1e6}M`, bigApp, () => ({
        path: hotPaths(),
      }));
      await bigApp.stop();
    } finally {
      await big.cleanup();
    }
  }
} finally {
  for (const server of servers) await server.stop();
  await env.cleanup();
}

const date = new Date().toISOString().slice(0, 19).replace(/:/g, "-");
const table = [
  "| scenario | dataset | requests/s | share of ceiling | p50 ms | p99 ms | peak RSS MB |",
  "|---|---|---:|---:|---:|---:|---:|",
  ...rows.map(
    (r) =>
      `| ${r.name} | ${r.dataset} | ${Math.round(r.requestsPerSecond).toLocaleString("en-US")} | ${(r.ratio * 100).toFixed(0)}% | ${r.p50} | ${r.p99} | ${r.peakRssMb.toFixed(0)} |`,
  ),
].join("\n");
const markdown = `${table}\n\n${notes.map((n) => `- ${n}`).join("\n")}\n\n32 connections, ${seconds} s per scenario after a 2 s warm-up, ${new Date().toISOString()}, \`npm run bench${large ? ` -- --orders ${large}` : ""}\`; total ${((Date.now() - started) / 1000).toFixed(0)} s.\n`;
await mkdir("bench/results", { recursive: true });
const chart = renderChart(
  rows.map((r) => ({ ...r, name: `${r.name}${r.dataset === "-" || r.dataset === "12k" ? "" : ` (${r.dataset})`}` })),
  "dellstore-orders: throughput and p99 per scenario (32 connections)",
);
for (const name of [date, "latest"]) {
  await writeFile(`bench/results/${name}.json`, `${JSON.stringify({ date, seconds, rows, notes }, null, 2)}\n`);
  await writeFile(`bench/results/${name}.md`, markdown);
  await writeFile(`bench/results/${name}.svg`, chart);
}
console.log(`\n${markdown}`);
