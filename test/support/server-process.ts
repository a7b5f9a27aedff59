// The service as a separate process, started the way users start it.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { projectRoot } from "./run.ts";

export interface ServerProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Sends SIGTERM to the whole process group and resolves with the server's exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === "string") throw new Error("no port");
  return address.port;
}

/**
 * The server as it ships (what `npm start` runs): dist/, which the global setup builds. Where a test
 * isn't about how the server is started, this is its command: a start under tsx costs a second more
 * of CPU, and the suite starts servers by the dozen.
 */
export const shippedServer: [string, ...string[]] = ["node", "dist/server/main.js"];

/** Starts `command` (default `npm start`) with `env`, and waits until it listens. */
export async function startServerProcess(
  env: Record<string, string>,
  command: [string, ...string[]] = ["npm", "start"],
  timeoutMs = 60_000,
): Promise<ServerProcess> {
  const port = env.PORT ?? String(await freePort());
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^(npm_|DATABASE_URL|PG_SERVICE_URI|VALKEY_)/.test(key)),
  );
  const child = spawn(command[0], command.slice(1), {
    cwd: projectRoot,
    env: { ...base, HOST: "127.0.0.1", ...env, PORT: port },
    detached: true,
  });
  let output = "";
  const collect = (chunk: Buffer) => {
    output += chunk;
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = once(child, "exit");
  const url = `http://127.0.0.1:${port}`;
  // Ready once it answers HTTP, whatever its log level.
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited before listening:\n${output}`);
    if (Date.now() > deadline) {
      process.kill(-(child.pid as number), "SIGKILL");
      throw new Error(`server did not start in ${timeoutMs} ms:\n${output}`);
    }
    try {
      await (await fetch(`${url}/health`)).arrayBuffer();
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    url,
    child,
    output: () => output,
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null) return child.exitCode;
      process.kill(-(child.pid as number), signal);
      const [code] = await exited;
      return code as number | null;
    },
  };
}
