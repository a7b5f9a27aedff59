// npm run bench:propagation — p50/p99 time from a psql-style INSERT's commit to
// the API showing it, over TRIALS (default 200) trials, on the local services.
import postgres from "postgres";
import { scriptArgs } from "../db/script.ts";
import { startApp } from "../server/app.ts";
import { loadConfig } from "../server/config.ts";
import { createLogger } from "../server/logger.ts";
import { createBenchEnvironment } from "./environment.ts";
import { measurePropagation } from "./propagation-trials.ts";

scriptArgs(
  "usage: npm run bench:propagation\n  p50/p99 time from an INSERT outside the app to GET /count showing it, over TRIALS (default 200)\n  trials, on the local PostgreSQL and Valkey.",
  {},
);
const trials = Number(process.env.TRIALS ?? 200);
const env = await createBenchEnvironment({ customers: 20_000, orders: 12_000 });
const config = loadConfig({
  DATABASE_URL: env.databaseUrl,
  VALKEY_URL: env.valkeyUrl,
  CACHE_PREFIX: env.prefix,
  PORT: "0",
});
const app = await startApp(config, createLogger("silent"));
const outside = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
try {
  if (!(await app.cache.ready(5000))) throw new Error("the cache did not come up");
  const result = await measurePropagation(app.url, outside, 9999, trials);
  console.log(
    `write outside the app → visible in GET /count, ${trials} trials: ` +
      `p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, max ${result.max.toFixed(1)} ms`,
  );
} finally {
  await outside.end();
  await app.close();
  await env.cleanup();
}
