// Prints the one line CI reads, "vitest: N passed, M failed", from the JSON
// reporter's results; a run that wrote none (it crashed first) counts as failed.
import { readFileSync } from "node:fs";

interface Results {
  numPassedTests: number;
  numFailedTests: number;
  testResults: { status: string; assertionResults: unknown[] }[];
}

let passed = 0;
let failed = 1;
try {
  const results = JSON.parse(readFileSync(".vitest/results.json", "utf8")) as Results;
  // A file that failed to load has no tests of its own to count as failed.
  const brokenFiles = results.testResults.filter(
    (f) => f.status === "failed" && f.assertionResults.length === 0,
  ).length;
  passed = results.numPassedTests;
  failed = results.numFailedTests + brokenFiles;
} catch {
  console.error("vitest wrote no results (.vitest/results.json): the run stopped before the tests");
}
console.log(`vitest: ${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
