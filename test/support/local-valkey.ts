// A standalone Valkey (or Redis) server of a test's own, started from the
// binary on this machine, without persistence: restarting it loses its data,
// as a restarted cache server without a disk does.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { binary, command, waitFor } from "./local-cluster.ts";
import { freePort } from "./server-process.ts";

export interface LocalValkey {
  readonly url: string;
  readonly port: number;
  /** Stops the server and starts a new one, empty, on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startLocalValkey(): Promise<LocalValkey> {
  const server = binary(["valkey-server", "redis-server"]);
  if (!server) {
    throw new Error(
      "This test needs valkey-server (or redis-server) on PATH: apt install valkey-server, or apt install redis-server",
    );
  }
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  let child: ChildProcess;
  const start = async () => {
    child = spawn(server, args, { stdio: "ignore" });
    await waitFor(async () => (await command(port, "PING")) === "PONG");
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGKILL"); // as a crash: nothing saved, connections reset
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    restart: async () => {
      await stop();
      await start();
    },
    stop,
  };
}
