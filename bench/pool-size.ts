// The app's write-bound scenarios at several DATABASE_POOL_SIZE values, in
// alternating rounds (the machine's load drifts between them): POST /add/
// alone and the 50/50 mix, wrk -t1 -c32, one database of --orders orders. The
// server must be built (npm run build):
//   node --import tsx bench/pool-size.ts [--sizes 10,4] [--orders 1000000] [--rounds 2] [--seconds 8]
import { scriptArgs } from "../db/script.ts";
import { startServerProcess } from "../test/support/server-process.ts";
import { createBenchEnvironment } from "./environment.ts";
import { type RequestSpec, runLoad } from "./load.ts";

const values = scriptArgs(
  "usage: node --import tsx bench/pool-size.ts [--sizes 10,4] [--orders N] [--rounds R] [--seconds S]",
  {
    sizes: { type: "string", default: "10,4" },
    orders: { type: "string", default: "1000000" },
    rounds: { type: "string", default: "2" },
    seconds: { type: "string", default: "8" },
  },
);
const customers = 20_000;
const hot = Array.from({ length: 100 }, (_, i) => 1 + i * 197);
const add: RequestSpec = {
  method: "POST",
  path: "/add/",
  body: '{"customerid":{hot},"netamount":10,"tax":0.83}',
  headers: { "idempotency-key": "{key}" },
};
const scenarios: [string, RequestSpec[]][] = [
  ["POST /add/ alone", [add]],
  [
    "50/50 mix",
    [
      { ...add, weight: 50 },
      { path: "/count", weight: 5 },
      { path: "/count?customerid={hot}", weight: 45 },
    ],
  ],
];

const env = await createBenchEnvironment({ customers, orders: Number(values.orders) });
const results = new Map<string, string[]>();
try {
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const size of values.sizes.split(",")) {
      const server = await startServerProcess(
        {
          DATABASE_URL: env.databaseUrl,
          VALKEY_URL: env.valkeyUrl,
          CACHE_PREFIX: env.prefix,
          DATABASE_POOL_SIZE: size,
        },
        [process.execPath, "dist/server/main.js"],
      );
      try {
        for (const [name, requests] of scenarios) {
          const r = await runLoad({
            url: server.url,
            requests,
            hot,
            customers,
            pid: server.child.pid as number,
            seconds: Number(values.seconds),
          });
          const line = `${Math.round(r.requestsPerSecond)}/s, p50 ${r.p50} ms, p99 ${r.p99} ms, ${r.serverCpuMicrosPerRequest.toFixed(0)} µs CPU/request`;
          console.log(`round ${round}, DATABASE_POOL_SIZE=${size}, ${name}: ${line}`);
          const key = `${name}, DATABASE_POOL_SIZE=${size}`;
          results.set(key, [...(results.get(key) ?? []), line]);
        }
      } finally {
        await server.stop();
      }
    }
  }
} finally {
  await env.cleanup();
}
for (const [key, lines] of results) console.log(`${key}: ${lines.join(" | ")}`);
