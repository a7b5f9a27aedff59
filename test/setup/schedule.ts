// Which test files start first, and which never run beside each other. Most
// files wait on servers, child processes and timers, so several run at once;
// the run then lasts as long as its longest chain, and a long file started last
// would leave the others' workers idle at the end. The machine-loading files
// (three server processes under load, a soak, the fault history) each saturate
// the cores on their own, and their bounds (hit rates, propagation within
// 300 ms, reads per second) would measure each other's load instead of the
// service, so they take turns (test/setup/exclusive.ts).

import { tmpdir } from "node:os";
import { join } from "node:path";

/** Files that load the machine on their own: one at a time, spread through the run. */
export const machineLoading = [
  "test/chaos.test.ts",
  "test/soak.test.ts",
  "test/multi-instance.test.ts",
  "test/l1-multi-instance.test.ts",
] as const;

/**
 * Of those, the ones whose bounds hold only on a machine of their own: no other file starts while one
 * runs. A rolling restart's hit rate (>= 90 %) fell to 74-88 % beside a few busy files: a starved
 * instance's Valkey calls time out, its breaker opens, and its reads bypass the cache meanwhile.
 */
export const needsQuietMachine = ["test/multi-instance.test.ts"] as const;

/** The directory whose owner has the machine-loading turn, for this run (the prefix is the run's own). */
export const turnPath = (runPrefix: string) => join(tmpdir(), `${runPrefix}.machine-loading`);
/** The directory whose owner keeps other files from starting. */
export const quietPath = (runPrefix: string) => join(tmpdir(), `${runPrefix}.quiet`);

/**
 * The order files start in, longest first, with the machine-loading ones spread
 * out so that each is due about when the one before it ends (a worker that takes
 * one early waits its turn; the others go on). Files not named here follow, in
 * Vitest's own order (the last run's durations, else the largest first).
 */
export const startOrder = [
  "test/chaos.test.ts",
  "test/cli.test.ts",
  "test/script-help.test.ts",
  "test/embedded.test.ts",
  "test/stopping.test.ts",
  "test/seed.test.ts",
  "test/soak.test.ts",
  "test/startup-checks.test.ts",
  "test/migrations.test.ts",
  "test/aggregates.test.ts",
  "test/store-record.test.ts",
  "test/multi-instance.test.ts",
  "test/database-changes.test.ts",
  "test/write-deadline.test.ts",
  "test/tls.test.ts",
  "test/live-page.test.ts",
  "test/live-counts.test.ts",
  "test/l1-multi-instance.test.ts",
] as const;
