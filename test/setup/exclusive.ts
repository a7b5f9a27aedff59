// A setup file: a machine-loading test file (test/setup/schedule.ts) waits
// until no other one runs, and holds the turn until its last hook is done; one
// that needs a quiet machine also keeps any other file from starting meanwhile
// (the files already running finish). Each is a directory (mkdir is atomic
// across the workers' processes) holding its owner's pid, so a worker that died
// holding one doesn't block the run.
import { access, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, inject } from "vitest";
import { machineLoading, needsQuietMachine, quietPath, turnPath } from "./schedule.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
/** Long enough for every machine-loading file to have its turn first. */
const longestWaitMs = 15 * 60_000;

let held: string[] = [];

beforeAll(async () => {
  const file = relative(root, expect.getState().testPath ?? "");
  const runPrefix = inject("runPrefix");
  const waitingSince = performance.now();
  while (await takenByOther(quietPath(runPrefix))) await sleep(250);
  if ((machineLoading as readonly string[]).includes(file)) {
    while (!(await take(turnPath(runPrefix)))) await sleep(250);
    held.push(turnPath(runPrefix));
    if ((needsQuietMachine as readonly string[]).includes(file)) {
      while (!(await take(quietPath(runPrefix)))) await sleep(250);
      held.push(quietPath(runPrefix));
    }
  }
  const waitedMs = performance.now() - waitingSince;
  if (waitedMs > 1000) console.log(`${file} waited ${(waitedMs / 1000).toFixed(0)} s for its turn`);
}, longestWaitMs);

afterAll(async () => {
  for (const path of held.reverse()) await rm(path, { recursive: true, force: true });
  held = [];
});

/** Takes the directory if it is free, or its owner's process is gone. */
async function take(path: string): Promise<boolean> {
  try {
    await mkdir(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    await takenByOther(path); // removes it if its owner is gone
    return false;
  }
  await writeFile(join(path, "pid"), String(process.pid));
  return true;
}

/** Whether another live process holds the directory; one whose owner is gone is removed. */
async function takenByOther(path: string): Promise<boolean> {
  const owner = await readFile(join(path, "pid"), "utf8").then(Number, () => undefined);
  if (owner === undefined)
    return access(path).then(
      () => true,
      () => false,
    ); // taken, its pid not yet written
  if (owner === process.pid) return false;
  if (alive(owner)) return true;
  await rm(path, { recursive: true, force: true });
  return false;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
