import type { IncomingMessage } from "node:http";
import type { Context } from "../trpc.ts";

/**
 * The request's context: the shared one, or a copy that honours the client's
 * Cache-Control (no-store: don't use the cache; no-cache: read the database and
 * refresh the entry), as curl -H 'Cache-Control: no-cache' would expect.
 */
export function contextFor(base: Context, req: IncomingMessage): Context {
  const header = req.headers["cache-control"];
  if (!header) return base;
  const directives = header
    .toLowerCase()
    .split(",")
    .map((d) => d.trim());
  if (directives.includes("no-store")) return { ...base, cacheMode: "no-store" };
  if (directives.includes("no-cache")) return { ...base, cacheMode: "no-cache" };
  return base;
}
