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
  const exited = once(child, "exit");
  const listening = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk;
      if (output.includes('"msg":"listening on')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`server exited before listening:\n${output}`));
    });
  });
  await listening;
  return {
    url: `http://127.0.0.1:${port}`,
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
