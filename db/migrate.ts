// npm run db:migrate: applies the committed migrations to DATABASE_URL (or the embedded database).
import { loadConfig } from "../server/config.ts";
import { openDatabase } from "./client.ts";
import { runScript } from "./script.ts";

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
