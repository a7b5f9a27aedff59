// The fault history test's short run (npm run chaos runs longer): three server
// processes on a PostgreSQL and a Valkey of its own, writes of every kind,
// reads of every cached procedure and live streams, and a nemesis injecting
// faults from a seeded schedule. CHAOS_SEED reproduces a run; a failure prints
// its seed and the operations around each violation.
import { expect, it } from "vitest";
import { runChaos } from "./support/chaos/run.ts";

const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const seconds = Number(process.env.CHAOS_SECONDS ?? 50);

it(`finds no violation in ${seconds} s of faults (seed ${seed})`, { timeout: (seconds + 150) * 1000 }, async () => {
  const report = await runChaos({ seconds, seed, log: (line) => console.log(`chaos: ${line}`) });
  console.log(`chaos: ${JSON.stringify({ ...report, violations: report.violations.length })}`);
  expect(report.violations, `seed ${seed}:\n${report.violations.join("\n\n")}`).toEqual([]);
  // It exercised what it claims to: writes of every kind, reads, streams and faults.
  expect(report.writes.rest + report.writes.trpc).toBeGreaterThan(50);
  expect(report.writes.psql).toBeGreaterThan(20);
  expect(report.readsChecked).toBeGreaterThan(500);
  expect(report.streamEvents).toBeGreaterThan(10);
  // Faults last up to 7 s, so a short run injects a handful.
  expect(Object.values(report.faults).reduce((n, k) => n + (k ?? 0), 0)).toBeGreaterThanOrEqual(5);
});
