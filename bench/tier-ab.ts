// Cached hits with the in-process tier on and off against a bare node:http
// server and the floor of an L1 hit (bench/bare-barrier-server.ts: a bare
// server that waits for the read barrier, through the app's TagTracking, and
// through a plain socket), in alternating rounds (the machine's load drifts
// between them), with wrk -t1 -c32, reporting each server's share of the same
// round's bare server and its own CPU time per request, which stays
// comparable when other work shares the machine. The server must be built
// (npm run build):
//   node --import tsx bench/tier-ab.ts [--rounds 2] [--seconds 4] [--paths /count,/trpc/orders.count]
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { createBenchEnvironment } from "./environment.ts";
import { answer, startIn, stop } from "./spawn-server.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "2" },
    seconds: { type: "string", default: "4" },
    paths: { type: "string", default: "/count,/trpc/orders.count,/count?customerid=9999" },
  },
});

async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function wrk(url: string, pid: number): Promise<{ rate: number; summary: string }> {
  const before = await cpuSeconds(pid);
  const output = execFileSync("wrk", ["-t1", "-c32", `-d${values.seconds}s`, "--latency", url], { encoding: "utf8" });
  const used = (await cpuSeconds(pid)) - before;
  const requests = Number(/(\d+) requests in/.exec(output)?.[1] ?? 0);
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1] ?? 0);
  if (/Non-2xx/.test(output)) throw new Error(`wrk: ${output}`);
  const summary = `${rate.toFixed(0)}/s, p99 ${/^\s+99%\s+(\S+)/m.exec(output)?.[1]}, server CPU ${((used * 1e6) / requests).toFixed(0)} µs/request`;
  return { rate, summary };
}

const env = await createBenchEnvironment({ customers: 20_000, orders: 12_000 });
try {
  for (let round = 1; round <= Number(values.rounds); round++) {
    const bareServer = await startIn(["node", "--import", "tsx", "bench/bare-server.ts"], ".", {});
    const bare = await wrk(`${bareServer.url}/count`, bareServer.child.pid as number);
    await stop(bareServer.child);
    console.log(`round ${round}: bare node:http: ${bare.summary}`);
    const share = (rate: number) => `${((rate / bare.rate) * 100).toFixed(0)} % of bare`;
    for (const barrier of ["tracking", "raw"]) {
      const floor = await startIn(["node", "--import", "tsx", "bench/bare-barrier-server.ts"], ".", {
        VALKEY_URL: env.valkeyUrl,
        BARRIER: barrier,
      });
      execFileSync("wrk", ["-t1", "-c32", "-d1s", `${floor.url}/count`]);
      const measured = await wrk(`${floor.url}/count`, floor.child.pid as number);
      await stop(floor.child);
      console.log(`round ${round}: bare + barrier (${barrier}): ${measured.summary}, ${share(measured.rate)}`);
    }
    for (const l1MaxBytes of ["67108864", "0"]) {
      const app = await startIn(["node", "dist/server/main.js"], ".", {
        DATABASE_URL: env.databaseUrl,
        VALKEY_URL: env.valkeyUrl,
        CACHE_PREFIX: env.prefix,
        L1_MAX_BYTES: l1MaxBytes,
      });
      for (const path of values.paths.split(",")) {
        // The miss, the Valkey hit that copies the entry into process memory, then a warm-up.
        await answer(`${app.url}${path}`);
        await answer(`${app.url}${path}`);
        execFileSync("wrk", ["-t1", "-c32", "-d1s", `${app.url}${path}`]);
        const measured = await wrk(`${app.url}${path}`, app.child.pid as number);
        console.log(`round ${round}: L1_MAX_BYTES=${l1MaxBytes} ${path}: ${measured.summary}, ${share(measured.rate)}`);
      }
      await stop(app.child);
    }
  }
} finally {
  await env.cleanup();
}
