// A three-master Valkey (or Redis) Cluster on free loopback ports, started from
// the server binary on this machine and joined with its CLI.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Valkey } from "iovalkey";
import { freePort } from "./server-process.ts";

export interface LocalCluster {
  nodes: string[];
  stop(): Promise<void>;
}

export function binary(candidates: string[]): string | undefined {
  return candidates.find((name) => spawnSync("sh", ["-c", `command -v ${name}`]).status === 0);
}

export async function startLocalCluster(): Promise<LocalCluster> {
  const server = binary(["valkey-server", "redis-server"]);
  const cli = binary(["valkey-cli", "redis-cli"]);
  if (!server || !cli) {
    throw new Error(
      "The Valkey Cluster test needs valkey-server and valkey-cli (or redis-server and redis-cli) on PATH: " +
        "apt install valkey-server, or apt install redis-server",
    );
  }
  const dir = await mkdtemp(join(tmpdir(), "dellstore-cluster-"));
  const ports = [await freePort(), await freePort(), await freePort()];
  const processes: ChildProcess[] = ports.map((port) =>
    spawn(
      server,
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(dir, `nodes-${port}.conf`),
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no",
        "--cluster-node-timeout",
        "2000",
      ],
      { stdio: "ignore" },
    ),
  );
  const nodes = ports.map((port) => `127.0.0.1:${port}`);
  const stop = async () => {
    for (const child of processes) child.kill("SIGTERM");
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) await waitFor(async () => (await command(port, "PING")) === "PONG");
    const created = spawnSync(cli, ["--cluster", "create", ...nodes, "--cluster-replicas", "0", "--cluster-yes"], {
      encoding: "utf8",
    });
    if (created.status !== 0) throw new Error(`${cli} --cluster create failed: ${created.stdout}${created.stderr}`);
    for (const port of ports) {
      await waitFor(async () => String(await command(port, "CLUSTER", "INFO")).includes("cluster_state:ok"));
    }
    return { nodes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export async function command(port: number, name: string, ...args: string[]): Promise<unknown> {
  const client = new Valkey(port, "127.0.0.1", {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    return await client.call(name, ...args);
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("the local cluster did not come up");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Keys under `prefix` on each node, by node. */
export async function keysPerNode(nodes: string[], prefix: string): Promise<number[]> {
  return Promise.all(
    nodes.map(async (node) => {
      const [host, port] = node.split(":") as [string, string];
      const client = new Valkey(Number(port), host);
      try {
        return (await client.keys(`${prefix}*`)).length;
      } finally {
        client.disconnect();
      }
    }),
  );
}
