// A server process for the HTTP benchmarks: started in a project directory on
// a free port, ready once it answers, stopped with SIGTERM.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { get } from "node:http";
import { freePort } from "../test/support/server-process.ts";

/** One request on its own connection (a pooled one may have timed out while a load generator ran). */
export function answer(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      res.resume();
      res.on("end", resolve);
    }).on("error", reject);
  });
}

export async function startIn(
  command: string[],
  cwd: string,
  env: Record<string, string>,
): Promise<{ url: string; port: number; child: ChildProcess }> {
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
      return { url, port, child };
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await exited;
}
