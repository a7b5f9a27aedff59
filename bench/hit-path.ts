// Cached GET /count and GET /trpc/orders.count against a bare node:http
// server, with wrk, in one run: the hit path's share of the ceiling. Pass the
// project directories to compare (each built: dist/server/main.js), e.g. a
// checkout of main and this one, alternating to spread the machine's drift;
// "<dir>+otel" runs that one with tracing on (exporting OTLP to a closed port):
//   node --import tsx bench/hit-path.ts /tmp/base . /tmp/base . .+otel
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

const env = await createBenchEnvironment({ customers: 20_000, orders: 12_000 });
try {
  for (const spec of directories) {
    const [directory = ".", variant] = spec.split("+");
    const tracing: Record<string, string> =
      variant === "otel" ? { OTEL_TRACES_EXPORTER: "otlp", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" } : {};
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
    const app = await startIn(["node", ...profile, "dist/server/main.js"], directory, {
      DATABASE_URL: env.databaseUrl,
      VALKEY_URL: env.valkeyUrl,
      CACHE_PREFIX: env.prefix,
      ...tracing,
    });
    for (const path of ["/count", "/trpc/orders.count"]) {
      await answer(`${app.url}${path}`); // the miss that fills the cache
      const rate = wrk(`${app.url}${path}`);
      console.log(`${spec} ${path}: ${rate.toFixed(0)} req/s, ${((rate / ceiling) * 100).toFixed(0)}% of bare`);
    }
    await stop(app.child);
  }
} finally {
  await env.cleanup();
}
