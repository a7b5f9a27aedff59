// npm run db:seed [-- --dump dellstore2-normal-1.0.sql | --customers N --orders N] [--reset | --if-empty]
import { loadConfig } from "../server/config.ts";
import { openDatabase } from "./client.ts";
import { loadDump } from "./load/dump.ts";
import { defaultDataset, generateDataset } from "./load/generate.ts";
import { progressBar } from "./load/progress.ts";
import { migrationState } from "./migration-state.ts";
import { customers, orders } from "./schema.ts";
import { runScript, scriptArgs } from "./script.ts";

const usage = [
  "usage: npm run db:seed -- [--dump FILE | --customers N --orders N] [--reset | --if-empty]",
  "  Loads the generated dataset (20,000 customers, 12,000 orders; --customers and --orders scale it) or a",
  "  dellstore dump (--dump) into DATABASE_URL, or into the embedded database under DATA_DIR. A database",
  "  that isn't migrated is migrated first, as `npm run db:migrate` would, and the output says so.",
].join("\n");

const values = scriptArgs(usage, {
  dump: { type: "string" },
  customers: { type: "string" },
  orders: { type: "string" },
  reset: { type: "boolean", default: false },
  // For one-shot deploy steps: tables that already hold data are left alone, and that is no error.
  "if-empty": { type: "boolean", default: false },
});

await runScript(async () => {
  const config = loadConfig();
  const database = await openDatabase(config.databaseUrl, config.dataDir);
  const started = performance.now();
  try {
    // Convenient on a fresh database; said, so nobody wonders later who applied the migrations.
    if ((await migrationState(database.db)) === "pending") {
      await database.migrate();
      console.log(`migrated the database first: ${database.description} had migrations to apply`);
    }
    if (values["if-empty"] && (await database.db.$count(customers)) + (await database.db.$count(orders)) > 0) {
      return console.log(`${database.description} already holds data: nothing loaded`);
    }
    if (values.dump) {
      if (!database.sql) {
        throw new Error(
          "loading a dump needs a PostgreSQL server: `export DATABASE_URL=postgres://…` and run it again",
        );
      }
      const progress = progressBar(values.dump);
      const report = await loadDump(database.sql, values.dump, { reset: values.reset, onBytes: progress.update });
      progress.done();
      const skipped = Object.entries(report.skipped).map(([table, rows]) => `${table} (${rows} rows)`);
      console.log(`loaded customers: ${report.loaded.customers} rows, orders: ${report.loaded.orders} rows`);
      if (skipped.length > 0) console.log(`skipped: ${skipped.join(", ")}`);
    } else {
      const counts = {
        customers: count(values.customers, "--customers", defaultDataset.customers),
        orders: count(values.orders, "--orders", defaultDataset.orders),
      };
      await generateDataset(database.db, { ...counts, reset: values.reset });
      console.log(`generated customers: ${counts.customers} rows, orders: ${counts.orders} rows`);
    }
    console.log(`into ${database.description} in ${((performance.now() - started) / 1000).toFixed(2)} s`);
  } finally {
    await database.close();
  }
});

function count(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new Error(`${flag} takes a whole number, not ${JSON.stringify(value)}\n${usage}`);
  return Number(value);
}
