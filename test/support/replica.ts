// A streaming replica of a PostgreSQL server the test runs itself (see
// local-postgres.ts), made the way an operator makes one: pg_basebackup -R
// into a temporary directory, then pg_ctl start on a free port. The test can
// make it lag (recovery_min_apply_delay), stop it and start it again.
import { spawnSync } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import postgres from "postgres";
import { runsPostgresIn, startCluster } from "./local-postgres.ts";
import { freePort } from "./server-process.ts";

export interface StreamingReplica {
  /** The URL of the replica's `postgres` database, as the primary's user (a hot standby: read-only). */
  readonly url: string;
  /** Holds back each replayed commit until it is `ms` old (recovery_min_apply_delay); 0 replays at once. */
  setApplyDelay(ms: number): Promise<void>;
  /** Stops the replica's server (fast shutdown: its connections are closed). */
  stop(): Promise<void>;
  /** Starts it again on the same port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it and removes its directory; safe to call twice. */
  close(): Promise<void>;
}

/**
 * pg_basebackup of the same major version as the initdb that made the primary:
 * Debian's /usr/bin wrapper may pick another one, so look beside initdb first.
 */
function binary(name: string): string {
  const initdb = spawnSync("sh", ["-c", "command -v initdb"], { encoding: "utf8" }).stdout.trim();
  if (initdb) {
    const beside = join(dirname(realpathSync(initdb)), name);
    if (existsSync(beside)) return beside;
  }
  return name;
}

/**
 * Makes a replica of the server at `primaryUrl`, whose user must be allowed
 * replication connections from 127.0.0.1 (initdb's pg_hba.conf allows them,
 * and max_wal_senders is 10 by default). No replication slot: the tests stop a
 * replica for seconds, far less than the primary takes to recycle its WAL.
 */
export async function startReplica(primaryUrl: string): Promise<StreamingReplica> {
  const dir = await mkdtemp("/tmp/dellstore-replica-");
  const data = join(dir, "data");
  const port = await freePort();
  const as = runsPostgresIn(dir);
  const pgCtl = binary("pg_ctl");
  const start = async () => {
    startCluster(as, { pgCtl, dir, data, port });
  };
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    try {
      as(pgCtl, ["-D", data, "-m", "immediate", "stop"]);
    } catch {}
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // -R: standby.signal and primary_conninfo, so it starts as the primary's streaming replica.
    as(binary("pg_basebackup"), ["-d", primaryUrl, "-D", data, "-R", "-X", "stream", "-c", "fast", "--no-sync"]);
    await start();
  } catch (error) {
    await close();
    throw error;
  }
  // The primary's user and password: the replica has the same roles.
  const replicaUrl = new URL(primaryUrl);
  replicaUrl.hostname = "127.0.0.1";
  replicaUrl.port = String(port);
  replicaUrl.pathname = "/postgres";
  const url = replicaUrl.toString();
  return {
    url,
    async setApplyDelay(ms) {
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`ALTER SYSTEM SET recovery_min_apply_delay = '${Math.round(ms)}ms'`);
        await sql`SELECT pg_reload_conf()`;
      } finally {
        await sql.end();
      }
      // The postmaster signals the startup process (which replays) as it rereads the file, before it
      // starts any new backend: once a new connection sees the value, replay is about to follow it.
      for (let attempt = 0; ; attempt++) {
        const fresh = postgres(url, { max: 1, onnotice: () => {} });
        try {
          const [row] = await fresh<{ ms: string }[]>`
            SELECT setting AS ms FROM pg_settings WHERE name = 'recovery_min_apply_delay'`;
          if (Number(row?.ms) === Math.round(ms)) return;
        } finally {
          await fresh.end();
        }
        if (attempt === 100) throw new Error(`the replica didn't take recovery_min_apply_delay = ${ms}ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async stop() {
      as(pgCtl, ["-D", data, "-m", "fast", "-w", "stop"]);
    },
    start,
    close,
  };
}
