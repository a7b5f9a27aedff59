// `npm run dev` is node --watch, which waits for a file change after its
// script exits, --help's exit included: `npm run dev -- --help` must print the
// usage and exit, with no watcher, and `npm run dev` must still serve and watch.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { expect, it } from "vitest";
import { useTestDatabase } from "./support/database.ts";
import { projectRoot } from "./support/run.ts";
import { startServerProcess } from "./support/server-process.ts";

const db = useTestDatabase("seeded");

it("`npm run dev -- --help` prints the usage, naming `npm run dev`, and exits", async () => {
  const child = spawn("npm", ["run", "-s", "dev", "--", "--help"], {
    cwd: projectRoot,
    env: Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/.test(key))),
    detached: true, // its own process group: a watcher left running is killed with it
  });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const exited = once(child, "exit");
  // Bounded: a watcher never exits by itself.
  const timer = setTimeout(() => process.kill(-(child.pid as number), "SIGKILL"), 20_000);
  const [code, signal] = await exited;
  clearTimeout(timer);
  expect({ code, signal }, output).toEqual({ code: 0, signal: null });
  expect(output).toMatch(/^usage: npm start .*\n\s+npm run dev /m);
  expect(output).not.toMatch(/Completed running|Restarting/);
}, 30_000);

it("`npm run dev` serves, from the sources, under node --watch", async () => {
  const server = await startServerProcess({ DATABASE_URL: db.url }, ["npm", "run", "dev"]);
  try {
    expect(await (await fetch(`${server.url}/count`)).json()).toEqual({ count: 12_000 });
    const ps = spawn("ps", ["-o", "args=", "-g", String(server.child.pid)]);
    let processes = "";
    ps.stdout.on("data", (chunk) => (processes += chunk));
    await once(ps, "exit");
    expect(processes).toMatch(/node --import tsx --watch server\/main\.ts/);
  } finally {
    await server.stop("SIGTERM");
  }
}, 90_000);
