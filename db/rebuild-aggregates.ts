// npm run db:aggregates [-- --check]: recomputes the order aggregates from
// orders and reports what had drifted; --check only reports, and exits 1 on drift.
import { loadConfig } from "../server/config.ts";
import { rebuildAggregates } from "./aggregates.ts";
import { openDatabase } from "./client.ts";
import { runScript, scriptArgs } from "./script.ts";

const usage = "usage: npm run db:aggregates [-- --check]";
const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`;

const values = scriptArgs(usage, { check: { type: "boolean", default: false } });

await runScript(async () => {
  const config = loadConfig();
  const database = await openDatabase(config.databaseUrl, config.dataDir);
  try {
    await database.migrate();
    const { monthsFixed, customersFixed } = await rebuildAggregates(database.db, { dryRun: values.check });
    const drifted = monthsFixed + customersFixed > 0;
    const what = `${count(monthsFixed, "month")} and ${count(customersFixed, "customer")}`;
    if (!drifted) console.log(`order aggregates in ${database.description} are exact: nothing to fix`);
    else if (values.check) {
      console.log(`order aggregates in ${database.description} have drifted: ${what} differ from orders`);
      process.exitCode = 1;
    } else console.log(`order aggregates in ${database.description} had drifted: ${what} rebuilt from orders`);
  } finally {
    await database.close();
  }
});
