// Whether a database has every committed migration applied: start-up refuses
// one that hasn't, and /health says "not migrated" instead of "up".
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { type Database, migrationsFolder, rowsOf } from "./client.ts";

/** The newest committed migration's timestamp: drizzle applies those newer than the last one it recorded. */
const latestMigration = (() => {
  const journal = JSON.parse(readFileSync(join(migrationsFolder, "meta", "_journal.json"), "utf8")) as {
    entries: { when: number }[];
  };
  return Math.max(...journal.entries.map((entry) => entry.when));
})();

// undefined_table, invalid_schema_name: drizzle's bookkeeping isn't there, so nothing was applied.
const neverMigrated = new Set(["42P01", "3F000"]);

/** "current", or "pending" when some committed migration hasn't been applied. Throws when the database can't answer. */
export async function migrationState(db: Database): Promise<"current" | "pending"> {
  try {
    const [row] = rowsOf<{ latest: string | null }>(
      await db.execute(sql`SELECT max(created_at)::text AS latest FROM drizzle.__drizzle_migrations`),
    );
    return Number(row?.latest ?? 0) >= latestMigration ? "current" : "pending";
  } catch (error) {
    if (neverMigrated.has(sqlState(error) ?? "")) return "pending";
    throw error;
  }
}

function sqlState(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && typeof e === "object" && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export const notMigratedHint = "apply the migrations with `npm run db:migrate` (same DATABASE_URL)";
