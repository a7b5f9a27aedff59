import { z } from "zod";
import { migrationState } from "../../db/migration-state.ts";
import type { Context } from "../trpc.ts";

export const healthResponse = z.object({
  status: z.enum(["ok", "unavailable"]),
  /** "not migrated": reachable, but `npm run db:migrate` has not applied every committed migration. */
  database: z.enum(["up", "down", "not migrated"]),
  cache: z.enum(["up", "down", "memory"]),
  /** Whether writes made outside the app reach the cache: "off" on the embedded database. */
  notifications: z.enum(["up", "down", "off"]),
});

export type Health = z.infer<typeof healthResponse>;

/**
 * Asks the database which migrations it has, with a bounded wait: a health
 * check must answer even when PostgreSQL doesn't. Each part is reported on its
 * own: the cache's state is its store's, whatever the database's.
 */
export async function checkHealth(
  { db, cache, changes }: Pick<Context, "db" | "cache" | "changes">,
  timeoutMs = 2000,
): Promise<Health> {
  const notifications = changes?.state ?? "off";
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("health check timed out")), timeoutMs);
  });
  try {
    const migrations = await Promise.race([migrationState(db), timeout]);
    if (migrations === "pending") {
      return { status: "unavailable", database: "not migrated", cache: cache.status, notifications };
    }
    return { status: "ok", database: "up", cache: cache.status, notifications };
  } catch {
    return { status: "unavailable", database: "down", cache: cache.status, notifications };
  } finally {
    clearTimeout(timer);
  }
}
