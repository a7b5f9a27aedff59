// npm run chaos [-- --minutes N --seed S]: the fault history test's long run
// (test/chaos.test.ts runs it for about a minute in npm test). Needs what the
// suite needs: PostgreSQL's initdb and pg_ctl, and valkey-server or
// redis-server, on this machine; it starts its own of each.
import { parseArgs } from "node:util";
import { runChaos } from "./support/chaos/run.ts";

const usage = `usage: npm run chaos [-- --minutes N] [--seed S]
  Runs three server processes under a seeded schedule of faults for N minutes
  (default 10) and checks the recorded history; the same seed draws the same
  schedule. Prints the operations, the faults injected per kind and the reads
  checked, and every violation with the operations around it; exits 1 on any.`;

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    seed: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const minutes = Number(values.minutes);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!(minutes > 0) || !Number.isInteger(seed)) {
  console.error(`error: --minutes must be a positive number and --seed an integer\n${usage}`);
  process.exit(2);
}
console.log(`chaos: ${minutes} min, seed ${seed}`);
const report = await runChaos({ seconds: minutes * 60, seed, log: (line) => console.log(`chaos: ${line}`) });
console.log(JSON.stringify({ ...report, violations: report.violations.length }, null, 2));
for (const violation of report.violations) console.log(`\n${violation}`);
console.log(`chaos: ${report.violations.length} violations (seed ${seed})`);
process.exitCode = report.violations.length > 0 ? 1 : 0;
