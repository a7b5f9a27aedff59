// A throwaway PostgreSQL server of the test's own (initdb + pg_ctl on a free
// port under a temporary directory), for what can't be done to a shared one:
// stopping every one of its processes with SIGSTOP.
import { execFileSync, spawnSync } from "node:child_process";
import { chownSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { freePort } from "./server-process.ts";

export interface LocalPostgres {
  /** A superuser URL of its `postgres` database. */
  url: string;
  /** Stops (SIGSTOP) or resumes (SIGCONT) the postmaster and all its children, as a hung host would. */
  signal(signal: "SIGSTOP" | "SIGCONT"): Promise<void>;
  remove(): Promise<void>;
}

const hasBinary = (name: string) => spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;

/**
 * Runs PostgreSQL's programs in `dir`, which becomes theirs: PostgreSQL refuses
 * to run as root, so as root they run as the postgres user. Throws with their
 * output when one fails.
 */
export function runsPostgresIn(dir: string): (command: string, args: string[]) => void {
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }));
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }));
    chownSync(dir, uid, gid);
  }
  return (command, args) => {
    const [file, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
    const result = spawnSync(file, argv, { encoding: "utf8", cwd: dir });
    if (result.status !== 0) throw new Error(`${command} failed: ${result.stdout}${result.stderr}`);
  };
}

/** Starts the cluster in `data` on 127.0.0.1:`port` (its socket and log in `dir`), waiting until it accepts connections. */
export function startCluster(
  as: (command: string, args: string[]) => void,
  { pgCtl, dir, data, port }: { pgCtl: string; dir: string; data: string; port: number },
): void {
  as(pgCtl, [
    "-D",
    data,
    "-w",
    "-l",
    join(dir, "log"),
    "-o",
    `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off`,
    "start",
  ]);
}

/** With `password`, the postgres user has it and every connection must give it (scram-sha-256); else trust. */
export async function startLocalPostgres({ password }: { password?: string } = {}): Promise<LocalPostgres> {
  if (!hasBinary("initdb") || !hasBinary("pg_ctl")) {
    throw new Error(
      "This test runs a PostgreSQL server of its own and needs initdb and pg_ctl on PATH: apt install postgresql, " +
        'then PATH="$(pg_config --bindir):$PATH"',
    );
  }
  const dir = await mkdtemp("/tmp/dellstore-pg-");
  const data = join(dir, "data");
  const port = await freePort();
  const as = runsPostgresIn(dir);
  const remove = async () => {
    spawnSync("kill", ["-CONT", ...(await processes(data).catch(() => []))].map(String));
    try {
      as("pg_ctl", ["-D", data, "-m", "immediate", "stop"]);
    } catch {}
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const auth = password === undefined ? ["--auth=trust"] : ["--auth=scram-sha-256", `--pwfile=${join(dir, "pw")}`];
    if (password !== undefined) await writeFile(join(dir, "pw"), password, { mode: 0o644 });
    as("initdb", ["-D", data, "-U", "postgres", ...auth, "--no-sync"]);
    startCluster(as, { pgCtl: "pg_ctl", dir, data, port });
  } catch (error) {
    await remove();
    throw error;
  }
  return {
    url: `postgres://postgres${password === undefined ? "" : `:${encodeURIComponent(password)}`}@127.0.0.1:${port}/postgres`,
    async signal(signal) {
      for (const pid of await processes(data)) process.kill(pid, signal);
    },
    remove,
  };
}

/** The postmaster (first line of postmaster.pid) and its children. */
async function processes(data: string): Promise<number[]> {
  const postmaster = Number((await readFile(join(data, "postmaster.pid"), "utf8")).split("\n")[0]);
  const children = execFileSync("ps", ["-o", "pid=", "--ppid", String(postmaster)], { encoding: "utf8" })
    .split("\n")
    .map((line) => Number(line.trim()))
    .filter((pid) => pid > 0);
  return [postmaster, ...children];
}
