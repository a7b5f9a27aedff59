import { sql } from "drizzle-orm";
import { z } from "zod";
import type { Context } from "../trpc.ts";

export const healthResponse = z.object({
  status: z.enum(["ok", "unavailable"]),
  database: z.enum(["up", "down"]),
  cache: z.enum(["up", "down", "memory"]),
  /** Whether writes made outside the app reach the cache: "off" on the embedded database. */
  notifications: z.enum(["up", "down", "off"]),
});

export type Health = z.infer<typeof healthResponse>;

/** Pings the database with a bounded wait: a health check must answer even when PostgreSQL doesn't. */
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
    await Promise.race([db.execute(sql`SELECT 1`), timeout]);
    return { status: "ok", database: "up", cache: cache.status, notifications };
  } catch {
    return { status: "unavailable", database: "down", cache: cache.status, notifications };
  } finally {
    clearTimeout(timer);
  }
}
