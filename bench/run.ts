// npm run bench [-- --orders 10000000] [--seconds 8] [--profile]
//
// Measures every scenario on the small (12,000 orders) and the 1,000,000-order
// dataset in the same run, and on a further dataset of --orders N if given.
// Each dataset gets its own database (migrated and generated) and key prefix on
// the local PostgreSQL and Valkey, and its own server process on a free port;
// the bench talks HTTP only. Load comes from wrk when installed (else
// autocannon), 32 connections, after a warm-up; the ceiling is a bare
// node:http server under the same generator. Mixes run beside a checker doing
// write → read sequences that counts stale reads. Writes bench/results/<date>.json,
// .md and .svg (and latest.*), and prints the table.
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { scriptArgs } from "../db/script.ts";
import { freePort, type ServerProcess, startServerProcess } from "../test/support/server-process.ts";
import { renderChart } from "./chart.ts";
import { type BenchEnvironment, createBenchEnvironment } from "./environment.ts";
import { benchLive, describeLive } from "./live.ts";
import { type LoadResult, type RequestSpec, runLoad, wrkInstalled } from "./load.ts";
import { measurePropagation } from "./propagation-trials.ts";
import { type StaleReport, startStaleChecker } from "./stale-checker.ts";

const values = scriptArgs(
  "usage: npm run bench -- [--orders N] [--seconds S] [--profile]\n" +
    "  Every scenario at 12,000 and 1,000,000 orders (and N if given), S seconds each (default 8), on the local\n" +
    "  PostgreSQL and Valkey; writes bench/results/. --profile adds a CPU profile of each server.",
  {
    orders: { type: "string" },
    seconds: { type: "string", default: "8" },
    profile: { type: "boolean", default: false },
  },
);
const seconds = Number(values.seconds);
const extra = values.orders ? Number(values.orders) : undefined;
if (extra !== undefined && !(Number.isSafeInteger(extra) && extra > 0))
  throw new Error("--orders takes a whole number");
const customers = 20_000;
const hot = Array.from({ length: 100 }, (_, i) => 1 + i * 197);
// Written only by the stale checker (none of them is hot).
const checkerCustomers = [19_999, 19_998, 19_997, 19_996];
const started = Date.now();

interface Row extends LoadResult {
  name: string;
  dataset: string;
  ratio: number;
  stale?: number;
}
const rows: Row[] = [];
const notes: string[] = [];

const noStore = { "cache-control": "no-store" };
// A fresh Idempotency-Key per request, as the typed client sends.
const addHot: RequestSpec = {
  method: "POST",
  path: "/add/",
  body: '{"customerid":{hot},"netamount":10,"tax":0.83}',
  headers: { "idempotency-key": "{key}" },
};
/** Writes to hot customers; reads: one in ten the total, else a hot customer's count. */
const mix = (writePercent: number): RequestSpec[] => [
  { ...addHot, weight: writePercent },
  { path: "/count", weight: (100 - writePercent) / 10 },
  { path: "/count?customerid={hot}", weight: ((100 - writePercent) * 9) / 10 },
];
const monthly2004 = `/trpc/orders.monthly?input=${encodeURIComponent(JSON.stringify({ json: { year: 2004 } }))}`;

const label = (orders: number) =>
  orders >= 1e6 ? `${orders / 1e6}M` : orders >= 1e3 ? `${orders / 1e3}k` : String(orders);

async function serve(env: BenchEnvironment, overrides: Record<string, string> = {}): Promise<ServerProcess> {
  const flags = values.profile ? ["--cpu-prof", "--cpu-prof-dir", "bench/results/profiles"] : [];
  return startServerProcess(
    {
      DATABASE_URL: env.databaseUrl,
      VALKEY_URL: env.valkeyUrl,
      CACHE_PREFIX: env.prefix,
      LOG_LEVEL: "warn",
      ...overrides,
    },
    ["node", ...flags, "dist/server/main.js"],
  );
}

async function measure(
  name: string,
  dataset: string,
  server: ServerProcess,
  requests: RequestSpec[],
  options: { checkStale?: boolean; connections?: number } = {},
): Promise<Row> {
  const checker = options.checkStale ? startStaleChecker(server.url, checkerCustomers) : undefined;
  let stale: StaleReport | undefined;
  let result: LoadResult;
  try {
    result = await runLoad({
      url: server.url,
      requests,
      hot,
      customers,
      pid: server.child.pid as number,
      seconds,
      connections: options.connections,
    });
  } finally {
    stale = await checker?.stop();
  }
  const ceiling = rows[0]?.requestsPerSecond ?? result.requestsPerSecond;
  const row: Row = {
    name,
    dataset,
    ...result,
    ratio: result.requestsPerSecond / ceiling,
    ...(stale ? { stale: stale.stale } : {}),
  };
  rows.push(row);
  console.log(
    `${name} [${dataset}]: ${Math.round(row.requestsPerSecond)}/s (${(row.ratio * 100).toFixed(0)}% of ceiling), ` +
      `p50 ${row.p50} ms, p99 ${row.p99} ms, RSS ${row.peakRssMb.toFixed(0)} MB, errors ${row.errors}, non-2xx ${row.non2xx}, ` +
      `server CPU ${row.serverCpuMicrosPerRequest.toFixed(0)} µs/request, ` +
      `${row.generator} CPU ${row.generatorCpuSeconds.toFixed(2)} s` +
      (stale ? `, stale ${stale.stale} of ${stale.sequences} write → read sequences` : ""),
  );
  return row;
}

/**
 * Afterwards, every hot and checker customer's count and the total, as the API
 * serves them, must be PostgreSQL's. Right at the end of a run wrk drops the
 * requests in flight: writes among them may commit unacknowledged, and for
 * those only the notification bound (100 ms) applies; so mismatches are
 * counted at once and again past that bound.
 */
async function staleAfterwards(
  env: BenchEnvironment,
  server: ServerProcess,
): Promise<{ atOnce: number; later: number }> {
  const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
  const mismatched = async (ids: (number | undefined)[]) => {
    const stale: (number | undefined)[] = [];
    for (const id of ids) {
      const res = await fetch(`${server.url}/count${id === undefined ? "" : `?customerid=${id}`}`);
      const { count } = (await res.json()) as { count: number };
      const [row] = await sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM orders WHERE ${id === undefined ? sql`true` : sql`customerid = ${id}`}`;
      if (count !== row?.n) stale.push(id);
    }
    return stale;
  };
  try {
    const atOnce = await mismatched([undefined, ...hot, ...checkerCustomers]);
    if (atOnce.length > 0) await new Promise((resolve) => setTimeout(resolve, 150));
    return { atOnce: atOnce.length, later: atOnce.length > 0 ? (await mismatched(atOnce)).length : 0 };
  } finally {
    await sql.end();
  }
}

/** What PostgreSQL itself commits: pgbench running `script` on 32 connections (as wrk's), transactions per second. */
async function pgbench(env: BenchEnvironment, script: string): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), "bench-pgbench-"));
  try {
    await writeFile(join(dir, "script.sql"), script);
    const result = spawnSync(
      "pgbench",
      ["-n", "-c", "32", "-j", "2", "-T", String(seconds), "-f", join(dir, "script.sql"), env.databaseUrl],
      { encoding: "utf8" },
    );
    const tps = /tps = ([\d.]+)/.exec(result.stdout)?.[1];
    if (result.status !== 0 || tps === undefined) throw new Error(`pgbench failed: ${result.stderr.slice(0, 500)}`);
    return Number(tps);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The write path against PostgreSQL's own ceiling, in one run, alternating so
 * drift in the machine's load weighs on both: POST /add/ alone (a fresh key
 * per request) and pgbench's plain INSERT into the same table with every user
 * trigger disabled, and the floor of any API write on this machine: a bare
 * node:http server making the same add_order() call and tag SETs, nothing else
 * (bench/bare-write-server.ts); then pgbench calling add_order() itself (what
 * one API write costs PostgreSQL). Afterwards the triggers are back, the
 * aggregates rebuilt and the cache retired (the trigger-less inserts were not logged).
 */
async function writePath(env: BenchEnvironment, server: ServerProcess, dataset: string) {
  const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
  const insert = `\\set c random(1, ${customers})
INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount) VALUES ('2004-06-06', :c, 10, 0.83, 10.83);
`;
  const addOrder = `\\set c random(1, ${customers})
SELECT * FROM add_order(gen_random_uuid()::text, 'bench', gen_random_uuid(), 10000, :c, '2004-06-06', 10, 0.83, 10.83);
`;
  const api: number[] = [];
  const floor: number[] = [];
  const raw: number[] = [];
  const bare = await startServerProcess(
    { DATABASE_URL: env.databaseUrl, VALKEY_URL: env.valkeyUrl, CACHE_PREFIX: env.prefix },
    ["node", "--import", "tsx", "bench/bare-write-server.ts"],
  );
  try {
    for (const round of [1, 2]) {
      api.push(
        (await measure(`POST /add/ only, a fresh key each (${round})`, dataset, server, [addHot])).requestsPerSecond,
      );
      floor.push(
        (await measure(`POST /add/ only, bare write server: the floor (${round})`, dataset, bare, [addHot]))
          .requestsPerSecond,
      );
      await sql`ALTER TABLE orders DISABLE TRIGGER USER`;
      try {
        raw.push(await pgbench(env, insert));
      } finally {
        await sql`ALTER TABLE orders ENABLE TRIGGER USER`;
      }
    }
    const inSql = await pgbench(env, addOrder);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const share = (xs: number[]) => `${((mean(xs) / mean(raw)) * 100).toFixed(1)} %`;
    notes.push(
      `${dataset} write path: POST /add/ alone ${api.map(Math.round).join(" / ")}/s against pgbench's plain INSERT with every user trigger disabled ${raw.map(Math.round).join(" / ")}/s (same table, 32 connections, alternating): **${share(api)}**; the bare write server (the floor: node:http, the same add_order() call and tag SETs, nothing else) ${floor.map(Math.round).join(" / ")}/s: **${share(floor)}**; pgbench calling add_order() (the API's whole transaction, triggers on) ${Math.round(inSql)}/s`,
    );
  } finally {
    await bare.stop();
    await sql`ALTER TABLE orders ENABLE TRIGGER USER`;
    await sql`SELECT * FROM order_aggregates_rebuild()`;
    await sql`INSERT INTO cache.change_log (tags) VALUES (ARRAY['*'])`; // the unlogged inserts: retire everything
    await sql.end();
  }
}

/** A psql-style write's time to show in a cached count while the API writes at full rate beside it. */
async function propagationUnderWrites(env: BenchEnvironment, server: ServerProcess, dataset: string) {
  const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const load = measure("POST /add/ only, with psql writes timed beside it", dataset, server, [addHot]);
    await new Promise((resolve) => setTimeout(resolve, 3000)); // past wrk's warm-up
    const trials = await measurePropagation(server.url, sql, checkerCustomers[0] as number, 50);
    await load;
    notes.push(
      `${dataset}: a psql write shown in a cached /count while the API writes at full rate: p50 ${trials.p50.toFixed(1)} ms, p99 ${trials.p99.toFixed(1)} ms, max ${trials.max.toFixed(1)} ms (50 trials)`,
    );
  } finally {
    await sql.end();
  }
}

async function benchDataset(orders: number, options: { small?: boolean; writes?: boolean }) {
  const dataset = label(orders);
  const loadStarted = performance.now();
  const env = await createBenchEnvironment({ customers, orders });
  notes.push(
    `${dataset}: database with ${orders.toLocaleString("en-US")} generated orders created, migrated and seeded in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s`,
  );
  const servers: ServerProcess[] = [];
  try {
    const app = await serve(env);
    servers.push(app);
    await measure("GET /count, cached", dataset, app, [{ path: "/count" }]);
    if (options.small) await measure("GET /trpc/orders.count, cached", dataset, app, [{ path: "/trpc/orders.count" }]);
    await measure("per-customer counts, 100 hot customers, cached", dataset, app, [
      { path: "/count?customerid={hot}" },
    ]);
    await measure("per-customer counts, random customers, uncached", dataset, app, [
      { path: "/count?customerid={random}", headers: noStore },
    ]);
    await measure("GET /count, uncached (no-store)", dataset, app, [{ path: "/count", headers: noStore }]);
    // What one miss costs, without queueing behind 31 others on two cores.
    const alone = { connections: 1 };
    await measure(
      "GET /count, uncached (no-store), 1 connection",
      dataset,
      app,
      [{ path: "/count", headers: noStore }],
      alone,
    );
    await measure(
      "orders.monthly 2004, uncached (no-store), 1 connection",
      dataset,
      app,
      [{ path: monthly2004, headers: noStore }],
      alone,
    );
    await measure("orders.monthly 2004, uncached (no-store)", dataset, app, [{ path: monthly2004, headers: noStore }]);
    await measure("95% reads / 5% writes", dataset, app, mix(5), { checkStale: true });
    await measure("50% reads / 50% writes", dataset, app, mix(50), { checkStale: true });
    const after = await staleAfterwards(env, app);
    notes.push(
      `${dataset}: after the mixes, every hot and checker customer's count and the total checked against PostgreSQL: ${after.atOnce} differ at once (writes wrk dropped unanswered at its end may still be notifying), ${after.later} past the 100 ms bound`,
    );
    if (options.writes) {
      await propagationUnderWrites(env, app, dataset);
      await writePath(env, app, dataset);
    }
    await app.stop();

    if (options.small) {
      // The same hits with every one checked in Valkey: what the in-process tier saves.
      const withoutL1 = await serve(env, { L1_MAX_BYTES: "0" });
      servers.push(withoutL1);
      await measure("GET /count, cached, L1 off (L1_MAX_BYTES=0)", dataset, withoutL1, [{ path: "/count" }]);
      await measure("per-customer counts, 100 hot customers, cached, L1 off", dataset, withoutL1, [
        { path: "/count?customerid={hot}" },
      ]);
      await withoutL1.stop();
      const cutOff = await serve(env, { VALKEY_URL: `redis://127.0.0.1:${await freePort()}` });
      servers.push(cutOff);
      await measure("GET /count, Valkey cut off (PostgreSQL answers)", dataset, cutOff, [{ path: "/count" }]);
      await cutOff.stop();
    }
  } finally {
    for (const server of servers) await server.stop();
    await env.cleanup();
  }
}

// The server runs as it does in production: compiled, without a TypeScript loader.
const build = spawnSync("npm", ["run", "-s", "build"], { stdio: "inherit" });
if (build.status !== 0) throw new Error("npm run build failed");
console.log(
  `load generator: ${wrkInstalled ? "wrk (-t1 -c32, Lua script per scenario)" : "autocannon (wrk not installed)"}`,
);

const bare = await startServerProcess({}, ["node", "--import", "tsx", "bench/bare-server.ts"]);
try {
  await measure("bare node:http (ceiling)", "-", bare, [{ path: "/count" }]);
} finally {
  await bare.stop();
}
const bareFastify = await startServerProcess({}, ["node", "--import", "tsx", "bench/bare-fastify-server.ts"]);
try {
  await measure("bare Fastify, no plugins (the framework's own ceiling)", "-", bareFastify, [{ path: "/count" }]);
} finally {
  await bareFastify.stop();
}
await benchDataset(12_000, { small: true, writes: true });
await benchDataset(1_000_000, { writes: true });
if (extra) await benchDataset(extra, {});

// Live counts: 10,000 SSE subscriptions on one instance while writes flow at 100/s (bench/live.ts).
{
  const env = await createBenchEnvironment({ customers, orders: 12_000 });
  try {
    const live = await benchLive(env, { subscriptions: 10_000, seconds, latencySeconds: 20, writesPerSecond: 100 });
    const ceiling = rows[0]?.requestsPerSecond ?? live.withoutStreams.requestsPerSecond;
    for (const [name, result] of [
      ["GET /count, cached, before 10,000 live streams", live.withoutStreams],
      ["GET /count, cached, 10,000 live streams open", live.withStreams],
      ["GET /count, cached, writes at 100/s", live.withoutStreamsWriting],
      ["GET /count, cached, writes at 100/s, 10,000 live streams", live.withStreamsWriting],
    ] as const) {
      rows.push({ name, dataset: "12k", ...result, ratio: result.requestsPerSecond / ceiling });
    }
    notes.push(...describeLive(live));
  } finally {
    await env.cleanup();
  }
}

const find = (name: string, dataset: string) => rows.find((r) => r.name === name && r.dataset === dataset);
const compare = (name: string, a: string, b: string) => {
  const [x, y] = [find(name, a), find(name, b)];
  if (x && y) notes.push(`${name} at ${a}: ${((x.requestsPerSecond / y.requestsPerSecond) * 100).toFixed(0)}% of ${b}`);
};
compare("95% reads / 5% writes", "1M", "12k");
if (extra) compare("95% reads / 5% writes", label(extra), "1M");

const date = new Date().toISOString().slice(0, 19).replace(/:/g, "-");
const generator = rows[0]?.generator ?? "none";
const table = [
  `| scenario | dataset | requests/s | share of ceiling | p50 ms | p99 ms | errors | stale reads | peak RSS MB | server CPU µs/request | ${generator} CPU s |`,
  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ...rows.map(
    (r) =>
      `| ${r.name} | ${r.dataset} | ${Math.round(r.requestsPerSecond).toLocaleString("en-US")} | ${(r.ratio * 100).toFixed(0)}% | ${r.p50} | ${r.p99} | ${r.errors + r.non2xx} | ${r.stale ?? ""} | ${r.peakRssMb.toFixed(0)} | ${r.serverCpuMicrosPerRequest.toFixed(0)} | ${r.generatorCpuSeconds.toFixed(2)} |`,
  ),
].join("\n");
const markdown = `${table}\n\n${notes.map((n) => `- ${n}`).join("\n")}\n\nLoad generator: ${generator}, 32 connections, ${seconds} s per scenario after a 2 s warm-up (its CPU time is for the measured ${seconds} s). ${new Date().toISOString()}, \`npm run bench${extra ? ` -- --orders ${extra}` : ""}\`; total ${((Date.now() - started) / 1000).toFixed(0)} s.\n`;
await mkdir("bench/results", { recursive: true });
const chart = renderChart(
  rows.map((r) => ({ ...r, name: `${r.name}${r.dataset === "-" ? "" : ` (${r.dataset})`}` })),
  `dellstore-orders: throughput and p99 per scenario (${generator}, 32 connections)`,
);
for (const name of [date, "latest"]) {
  await writeFile(`bench/results/${name}.json`, `${JSON.stringify({ date, seconds, rows, notes }, null, 2)}\n`);
  await writeFile(`bench/results/${name}.md`, markdown);
  await writeFile(`bench/results/${name}.svg`, chart);
}
console.log(`\n${markdown}`);
