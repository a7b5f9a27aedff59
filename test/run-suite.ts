// npm test [-- vitest's arguments]: runs vitest, then prints the one line CI
// reads, "vitest: N passed, M failed", from the JSON reporter's results; a run
// that wrote none (it crashed first) counts as failed. `--help` is vitest's.
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";

const args = process.argv.slice(2);
const resultsFile = ".vitest/results.json";

if (args.includes("--help") || args.includes("-h")) {
  console.log(
    'usage: npm test [-- FILE... | vitest run\'s options]\n  Runs the suite (or FILE...) and ends with "vitest: N passed, M failed".\n',
  );
  process.exitCode = spawnSync("vitest", ["run", "--help"], { stdio: "inherit" }).status ?? 1;
} else {
  rmSync(resultsFile, { force: true });
  spawnSync("vitest", ["run", ...args], { stdio: "inherit" });
  summarize();
}

interface Results {
  numPassedTests: number;
  numFailedTests: number;
  testResults: { status: string; assertionResults: unknown[] }[];
}

function summarize() {
  let passed = 0;
  let failed = 1;
  try {
    const results = JSON.parse(readFileSync(resultsFile, "utf8")) as Results;
    // A file that failed to load has no tests of its own to count as failed.
    const brokenFiles = results.testResults.filter(
      (f) => f.status === "failed" && f.assertionResults.length === 0,
    ).length;
    passed = results.numPassedTests;
    failed = results.numFailedTests + brokenFiles;
  } catch {
    console.error(`vitest wrote no results (${resultsFile}): the run stopped before the tests`);
  }
  console.log(`vitest: ${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
}
