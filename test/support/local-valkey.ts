// A standalone Valkey (or Redis) server of a test's own, started from the
// binary on this machine, without persistence: restarting it loses its data,
// as a restarted cache server without a disk does. `save()` writes a snapshot
// (an RDB file in a directory of its own) that the next restart loads: a
// server restored from a backup, or one that lost its last writes.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { binary, command, waitFor } from "./local-cluster.ts";
import { freePort } from "./server-process.ts";

export interface LocalValkey {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGKILL) and starts a new one on the same port: empty, or from the last save(). */
  restart(options?: { fromSnapshot?: boolean; downMs?: number }): Promise<void>;
  /** SIGSTOP or SIGCONT: a hung server, whose sockets stay open. */
  signal(signal: "SIGSTOP" | "SIGCONT"): void;
  /** Writes a snapshot of what the server holds now, for the next restart to load. */
  save(): Promise<void>;
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
  const dir = mkdtempSync(join(tmpdir(), "local-valkey-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir];
  let child: ChildProcess;
  const start = async () => {
    child = spawn(server, args, { stdio: "ignore" });
    await waitFor(async () => (await command(port, "PING")) === "PONG");
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGCONT"); // a stopped server is killed all the same
    child.kill("SIGKILL"); // as a crash: nothing saved, connections reset
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    restart: async ({ fromSnapshot = false, downMs = 0 } = {}) => {
      await stop();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      if (!fromSnapshot) rmSync(join(dir, "dump.rdb"), { force: true });
      await start();
    },
    signal: (signal) => {
      child.kill(signal);
    },
    save: async () => {
      if ((await command(port, "SAVE")) !== "OK") throw new Error("the test Valkey did not save a snapshot");
    },
    stop: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
