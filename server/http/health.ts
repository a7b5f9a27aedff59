import { z } from "zod";
import { migrationState } from "../../db/migration-state.ts";
import type { Context } from "../trpc.ts";

export const healthResponse = z.object({
  status: z.enum(["ok", "unavailable"]),
  /** "not migrated": reachable, but `npm run db:migrate` has not applied every committed migration. */
  database: z.enum(["up", "down", "not migrated"]),
  cache: z.enum(["up", "down", "memory"]),
  /** Whether changes made outside the app reach the cache (an applier passes); "off" without a shared cache to keep. */
  changes: z.enum(["up", "down", "off"]),
});

export type Health = z.infer<typeof healthResponse>;

/**
 * Asks the database which migrations it has, with a bounded wait: a health
 * check must answer even when PostgreSQL doesn't. Each part is reported on its
 * own: the cache's state is its store's, whatever the database's.
 */
export async function checkHealth(
  { db, cache, applier }: Pick<Context, "db" | "cache" | "applier">,
  timeoutMs = 2000,
): Promise<Health> {
  const changes = applier?.state ?? "off";
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("health check timed out")), timeoutMs);
  });
  try {
    const migrations = await Promise.race([migrationState(db), timeout]);
    if (migrations === "pending") {
      return { status: "unavailable", database: "not migrated", cache: cache.status, changes };
    }
    return { status: "ok", database: "up", cache: cache.status, changes };
  } catch {
    return { status: "unavailable", database: "down", cache: cache.status, changes };
  } finally {
    clearTimeout(timer);
  }
}
