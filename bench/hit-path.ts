// Cached GET /count and GET /trpc/orders.count against a bare node:http
// server, with wrk, in one run: the hit path's share of the ceiling. Pass the
// project directories to compare (each built: dist/server/main.js), e.g. a
// checkout of main and this one:
//   node --import tsx bench/hit-path.ts /tmp/base .
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { get } from "node:http";
import { resolve } from "node:path";
import { freePort } from "../test/support/server-process.ts";
import { createBenchEnvironment } from "./environment.ts";

const directories = process.argv.slice(2);
if (directories.length === 0) directories.push(".");
const wrkArgs = ["-t1", "-c32", `-d${process.env.BENCH_SECONDS ?? 10}s`];

/** One request on its own connection (a pooled one may have timed out while wrk ran). */
function answer(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      res.resume();
      res.on("end", resolve);
    }).on("error", reject);
  });
}

async function start(command: string[], cwd: string, env: Record<string, string>) {
  const port = await freePort();
  const child = spawn(command[0] as string, command.slice(1), {
    cwd,
    env: { ...process.env, HOST: "127.0.0.1", PORT: String(port), LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${command.join(" ")} exited`);
    try {
      await answer(`${url}/count`);
      return { url, child };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function stop(child: ChildProcess) {
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await exited;
}

function wrk(url: string): number {
  const output = execFileSync("wrk", [...wrkArgs, url], { encoding: "utf8" });
  const match = /Requests\/sec:\s+([\d.]+)/.exec(output);
  if (!match || /Non-2xx/.test(output)) throw new Error(`wrk: ${output}`);
  return Number(match[1]);
}

const env = await createBenchEnvironment({ customers: 20_000, orders: 12_000 });
try {
  for (const directory of directories) {
    // The ceiling right before each, as the machine's load drifts.
    const bare = await start(["node", "--import", "tsx", resolve("bench/bare-server.ts")], ".", {});
    const ceiling = wrk(`${bare.url}/count`);
    await stop(bare.child);
    console.log(`bare node:http: ${ceiling.toFixed(0)} req/s`);
    // BENCH_PROFILE=<dir>: a CPU profile of each server (node --cpu-prof), written when it stops.
    const profile = process.env.BENCH_PROFILE
      ? ["--cpu-prof", "--cpu-prof-dir", resolve(process.env.BENCH_PROFILE)]
      : [];
    const app = await start(["node", ...profile, "dist/server/main.js"], directory, {
      DATABASE_URL: env.databaseUrl,
      VALKEY_URL: env.valkeyUrl,
      CACHE_PREFIX: env.prefix,
    });
    for (const path of ["/count", "/trpc/orders.count"]) {
      await answer(`${app.url}${path}`); // the miss that fills the cache
      const rate = wrk(`${app.url}${path}`);
      console.log(`${directory} ${path}: ${rate.toFixed(0)} req/s, ${((rate / ceiling) * 100).toFixed(0)}% of bare`);
    }
    await stop(app.child);
  }
} finally {
  await env.cleanup();
}
