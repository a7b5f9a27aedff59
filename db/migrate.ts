// npm run db:migrate: applies the committed migrations to DATABASE_URL (or the embedded database).
import { loadConfig } from "../server/config.ts";
import { openDatabase } from "./client.ts";
import { runScript, scriptArgs } from "./script.ts";

scriptArgs(
  "usage: npm run db:migrate\n  Applies the committed migrations to DATABASE_URL (or to the embedded database under DATA_DIR).",
  {},
);

await runScript(async () => {
  const config = loadConfig();
  const database = await openDatabase(config.databaseUrl, config.dataDir);
  try {
    await database.migrate();
    console.log(`migrated ${database.description}`);
  } finally {
    await database.close();
  }
});
