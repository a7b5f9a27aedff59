// Cached GET /count and GET /trpc/orders.count against a bare node:http
// server, with wrk, in one run: the hit path's share of the ceiling. Pass the
// project directories to compare (each built: dist/server/main.js), e.g. a
// checkout of main and this one; "<dir>+otel" runs that one with tracing on
// (exporting OTLP to a closed port):
//   node --import tsx bench/hit-path.ts /tmp/base . .+otel
// On a loaded machine, BENCH_ROUNDS=8 runs them all at once instead and
// measures them in turns (BENCH_SECONDS each, the order rotating every
// round), so the machine's drift falls on each alike; it reports each one's
// total against the first's.
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { createBenchEnvironment } from "./environment.ts";
import { answer, startIn, stop } from "./spawn-server.ts";

const directories = process.argv.slice(2);
if (directories.length === 0) directories.push(".");
const wrkArgs = ["-t1", "-c32", `-d${process.env.BENCH_SECONDS ?? 10}s`];

function wrk(url: string): number {
  const output = execFileSync("wrk", [...wrkArgs, url], { encoding: "utf8" });
  const match = /Requests\/sec:\s+([\d.]+)/.exec(output);
  if (!match || /Non-2xx/.test(output)) throw new Error(`wrk: ${output}`);
  return Number(match[1]);
}

const rounds = Number(process.env.BENCH_ROUNDS ?? 0);
const paths = (process.env.BENCH_PATHS ?? "/count,/trpc/orders.count").split(",");

/** A checkout's server, "<dir>" or "<dir>+otel", on the benchmark's database and Valkey. */
function startApp(spec: string, env: Awaited<ReturnType<typeof createBenchEnvironment>>, profile: string[] = []) {
  const [directory = ".", variant] = spec.split("+");
  const tracing: Record<string, string> =
    variant === "otel" ? { OTEL_TRACES_EXPORTER: "otlp", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" } : {};
  return startIn(["node", ...profile, "dist/server/main.js"], directory, {
    DATABASE_URL: env.databaseUrl,
    VALKEY_URL: env.valkeyUrl,
    CACHE_PREFIX: env.prefix,
    ...tracing,
  });
}

const env = await createBenchEnvironment({ customers: 20_000, orders: 12_000 });
try {
  if (rounds > 0) {
    const apps: ({ spec: string } & Awaited<ReturnType<typeof startApp>>)[] = [];
    for (const spec of directories) apps.push({ spec, ...(await startApp(spec, env)) });
    try {
      for (const path of paths) {
        const totals = apps.map(() => 0);
        for (const app of apps) await answer(`${app.url}${path}`); // the miss that fills the cache
        for (let round = 0; round < rounds; round++) {
          for (let turn = 0; turn < apps.length; turn++) {
            const i = (round + turn) % apps.length;
            totals[i] = (totals[i] ?? 0) + wrk(`${apps[i]?.url}${path}`);
          }
        }
        const first = totals[0] ?? 1;
        apps.forEach((app, i) => {
          const total = totals[i] ?? 0;
          console.log(
            `${app.spec} ${path}: ${(total / rounds).toFixed(0)} req/s on average over ${rounds} turns, ${((total / first) * 100).toFixed(0)}% of ${apps[0]?.spec}`,
          );
        });
      }
    } finally {
      for (const app of apps) await stop(app.child);
    }
  }
  for (const spec of rounds > 0 ? [] : directories) {
    // The ceiling right before each, as the machine's load drifts.
    const bare = await startIn(["node", "--import", "tsx", resolve("bench/bare-server.ts")], ".", {});
    const ceiling = wrk(`${bare.url}/count`);
    await stop(bare.child);
    const floor = await startIn(["node", "--import", "tsx", resolve("bench/bare-valkey-server.ts")], ".", {});
    const withValkey = wrk(`${floor.url}/count`);
    await stop(floor.child);
    console.log(
      `bare node:http: ${ceiling.toFixed(0)} req/s; with one Valkey MGET per request: ${withValkey.toFixed(0)} req/s, ${((withValkey / ceiling) * 100).toFixed(0)}% of bare`,
    );
    // BENCH_PROFILE=<dir>: a CPU profile of each server (node --cpu-prof), written when it stops.
    const profile = process.env.BENCH_PROFILE
      ? ["--cpu-prof", "--cpu-prof-dir", resolve(process.env.BENCH_PROFILE)]
      : [];
    const app = await startApp(spec, env, profile);
    for (const path of paths) {
      await answer(`${app.url}${path}`); // the miss that fills the cache
      const rate = wrk(`${app.url}${path}`);
      console.log(`${spec} ${path}: ${rate.toFixed(0)} req/s, ${((rate / ceiling) * 100).toFixed(0)}% of bare`);
    }
    await stop(app.child);
  }
} finally {
  await env.cleanup();
}
