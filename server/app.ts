// Wires the service together: database, context, HTTP server. Used by main.ts
// and by the tests, which start real listening servers on free ports.

import type { Server } from "node:http";
import { type DatabaseHandle, describeConnectionError, openDatabase } from "../db/client.ts";
import { defaultDataset, generateDataset } from "../db/load/generate.ts";
import { migrationState, notMigratedHint } from "../db/migration-state.ts";
import { prepareQueries } from "../db/queries.ts";
import { customers } from "../db/schema.ts";
import { Applier, type ApplierOptions } from "./cache/applier.ts";
import { type Cache, createCache } from "./cache/index.ts";
import { QueryCache } from "./cache/query-cache.ts";
import type { Config } from "./config.ts";
import { isMissingDatabase } from "./database-errors.ts";
import { databaseMisconfiguration } from "./database-misconfiguration.ts";
import { Listener } from "./http/connections.ts";
import { createHttpApp, type HttpOptions } from "./http/server.ts";
import { CountHub, type CountHubOptions } from "./live/count-hub.ts";
import { countLoader } from "./live/counts.ts";
import type { Logger } from "./logger.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { ordersCount } from "./routers/cache-policies.ts";
import type { Tracing } from "./telemetry/index.ts";
import type { Context } from "./trpc.ts";

export interface App {
  readonly url: string;
  readonly server: Server;
  readonly database: DatabaseHandle;
  readonly cache: Cache;
  readonly metrics: Metrics;
  /** What procedures see; `createCaller(app.context)` calls them in-process. */
  readonly context: Context;
  /** Stops accepting, lets in-flight requests finish (within SHUTDOWN_GRACE_SECONDS), then closes the pools. */
  close(): Promise<void>;
}

/** Parts a test may supply instead of the ones built from the configuration, and OpenTelemetry when started. */
export interface AppOverrides {
  /** Started by main.ts when an OTEL_* variable is set (server/telemetry/); absent, nothing is traced. */
  tracing?: Tracing;
  database?: DatabaseHandle;
  cache?: (parts: { log: Logger; metrics: Metrics }) => Cache;
  /** The change applier's timings and test seams (`url`: its own session's path, e.g. through a proxy). */
  applier?: Partial<Pick<ApplierOptions, "url" | "passMs" | "electionMs" | "staleAfterMs" | "afterReplayRead">>;
  /** Another router's procedures, mounted instead of the app's. */
  api?: HttpOptions["api"];
  /** Live counts' timings. */
  live?: Partial<Pick<CountHubOptions, "minIntervalMs" | "pollMs">> & { heartbeatMs?: number };
}

export async function startApp(config: Config, log: Logger, overrides: AppOverrides = {}): Promise<App> {
  // The port first: a start that fails here (port in use) has touched neither Valkey nor the database.
  const listener = await Listener.listen({ port: config.port, host: config.host, limits: config.http });
  try {
    return await startServing(listener, config, log, overrides);
  } catch (error) {
    await listener.close(0);
    throw error;
  }
}

async function startServing(listener: Listener, config: Config, log: Logger, overrides: AppOverrides): Promise<App> {
  const database =
    overrides.database ??
    (await openDatabase(config.databaseUrl, config.dataDir, {
      max: config.databasePoolSize,
      timeoutSeconds: config.databaseTimeoutSeconds,
      tracing: overrides.tracing,
    }));
  try {
    if (database.kind === "embedded") await prepareEmbedded(database, log);
    else await checkDatabase(database, config.databaseUrl, log);
  } catch (error) {
    await database.close();
    throw error;
  }

  const metrics = createMetrics();
  const { tracing } = overrides;
  const cache = overrides.cache?.({ log, metrics }) ?? createCache(config, log, metrics, {}, tracing);
  // Every change to orders, the app's or anyone's, reaches the cache through the change log.
  const applier =
    cache instanceof QueryCache
      ? new Applier({
          url: database.kind === "postgres" ? config.databaseUrl : undefined,
          db: database.db,
          cache,
          storeId: cache.storeId,
          log,
          metrics,
          ...overrides.applier,
        })
      : undefined;
  applier?.start();
  // Serve at once either way: a cache that isn't up yet is bypassed until it is.
  await cache.ready(1000);

  const context: Context = {
    db: database.db,
    settler: database.settler,
    queries: prepareQueries(database.db),
    log,
    cache: tracing ? tracing.cache(cache) : cache,
    cacheMode: "default",
    metrics,
    applier,
    apiToken: config.apiToken,
    databaseTimeoutMs: config.databaseTimeoutSeconds * 1000,
  };
  const live = new CountHub({
    tagOf: (input) => ordersCount.tags(input)[0] as string,
    load: countLoader(context.queries, context.databaseTimeoutMs),
    feed: cache instanceof QueryCache ? cache.tagFeed : undefined,
    maxSubscriptions: config.maxSubscriptions,
    log,
    metrics,
    ...overrides.live,
  });
  context.live = live;
  if (config.apiToken === undefined) {
    log.warn(
      "no API_TOKEN: anyone who can reach this server can add orders; set API_TOKEN to require a bearer token for writes",
    );
  }
  const releaseShared = async () => {
    await applier?.stop();
    await Promise.all([database.close(), cache.close()]);
  };
  let http: Awaited<ReturnType<typeof createHttpApp>>;
  try {
    http = await createHttpApp({
      listener,
      context,
      log,
      limits: config.http,
      allowedHosts: config.http.allowedHosts,
      api: overrides.api,
      liveHeartbeatMs: overrides.live?.heartbeatMs,
      tracing: overrides.tracing,
    });
  } catch (error) {
    // A start that fails leaves nothing running (no pools, no listener) and has retired nothing.
    await releaseShared();
    throw error;
  }
  const { port } = listener.address;
  const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`;

  let closing: Promise<void> | undefined;
  const close = async () => {
    // Drain first: in-flight requests still need the database and the cache. Live streams end at
    // once (their clients reconnect elsewhere); the drain waits for them as for any response.
    const draining = listener.close(config.http.shutdownGraceSeconds * 1000);
    live.close();
    await draining;
    await http.close();
    await releaseShared();
  };
  return {
    url,
    server: listener.server,
    database,
    cache,
    metrics,
    context,
    close: () => (closing ??= close()),
  };
}

/** First start without DATABASE_URL: migrate the embedded database and give it the generated dataset. */
async function prepareEmbedded(database: DatabaseHandle, log: Logger): Promise<void> {
  log.info(
    `no DATABASE_URL: using ${database.description}; set DATABASE_URL=postgres://user:password@host:5432/db to use a PostgreSQL server`,
  );
  await database.migrate();
  if ((await database.db.$count(customers)) === 0) {
    await generateDataset(database.db, defaultDataset);
    log.info(defaultDataset, "seeded the embedded database with the generated dataset");
  }
}

/** A database the service can't run on: start-up stops with what to do about it. */
export class StartupError extends Error {
  override name = "StartupError";
}

/**
 * Says which server it uses; stops start-up when the database doesn't exist or
 * isn't migrated, with the command that fixes it. An unreachable server is not
 * fatal: requests get 503 until it answers.
 */
async function checkDatabase(database: DatabaseHandle, url: string | undefined, log: Logger): Promise<void> {
  log.info({ database: database.description }, "using PostgreSQL");
  let timer: NodeJS.Timeout | undefined;
  const slow = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("no answer within 2 s")), 2000);
  });
  let state: "current" | "pending";
  try {
    state = await Promise.race([migrationState(database.db), slow]);
  } catch (error) {
    if (isMissingDatabase(error)) throw new StartupError(missingDatabaseMessage(url, database.description));
    const misconfigured = databaseMisconfiguration(error, database.description, url);
    if (misconfigured) throw new StartupError(misconfigured);
    log.error(
      { reason: describeConnectionError(error) },
      "PostgreSQL is unreachable; requests get 503 until it answers",
    );
    return;
  } finally {
    clearTimeout(timer);
  }
  if (state === "pending") {
    throw new StartupError(
      `the database ${database.description} is not migrated: ${notMigratedHint}, then start again`,
    );
  }
}

/** "database does not exist", with the createdb line for it (user, host, port and name; never the password). */
function missingDatabaseMessage(url: string | undefined, description: string): string {
  let createdb = "createdb <name>";
  try {
    const u = new URL(url ?? "");
    const name = decodeURIComponent(u.pathname.slice(1));
    createdb = [
      "createdb",
      `-h ${u.hostname}`,
      u.port && `-p ${u.port}`,
      u.username && `-U ${decodeURIComponent(u.username)}`,
      name,
    ]
      .filter(Boolean)
      .join(" ");
  } catch {}
  return `the database ${description} does not exist: create it with \`${createdb}\`, then ${notMigratedHint}`;
}
