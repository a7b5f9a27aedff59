// One server process per embedded database: PGlite has no lock of its own, and
// two processes on one data directory each believe they own it, hand out the
// same order ids and lose each other's writes.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import lockfile from "proper-lockfile";

export class DataDirInUseError extends Error {
  override name = "DataDirInUseError";
}

// The holder refreshes the lock every second; one not refreshed for 5 s is a dead holder's.
const staleMs = 5000;

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
};

/**
 * Takes `dataDir` for this process, or throws a DataDirInUseError naming the
 * process that has it. A lock left by a process that died is taken over: at
 * once when its pid is gone, else once it has gone stale. Returns the release.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const lockfilePath = join(dataDir, "server.lock");
  const pidFile = join(dataDir, "server.pid");
  const holder = Number.parseInt(await readFile(pidFile, "utf8").catch(() => ""), 10);
  const holderAlive = Number.isInteger(holder) && isAlive(holder);
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dataDir, {
      lockfilePath,
      stale: staleMs,
      update: 1000,
      // A dead holder's lock goes stale within `staleMs`: wait for that, not for a live one.
      retries: holderAlive ? 0 : { retries: 8, minTimeout: 500, maxTimeout: 1000 },
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ELOCKED") throw error;
    const who = Number.isInteger(holder) ? `process ${holder}` : "another process";
    throw new DataDirInUseError(
      `the embedded database in ${dataDir} (DATA_DIR) is in use by ${who}: stop that server first, ` +
        "or give this one another DATA_DIR, or a PostgreSQL server with DATABASE_URL",
    );
  }
  await writeFile(pidFile, `${process.pid}\n`);
  return release;
}
