// One Drizzle handle over either a real PostgreSQL pool (postgres.js) or the
// embedded PGlite database; the rest of the app sees only `Database`.
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import type { ConnectionOptions } from "node:tls";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import type { Logger } from "drizzle-orm/logger";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { lockDataDir } from "./data-dir-lock.ts";
import * as schema from "./schema.ts";

export type Schema = typeof schema;
/** The committed drizzle-kit migrations: the same files on PostgreSQL and PGlite. */
export const migrationsFolder = fileURLToPath(new URL("./migrations", import.meta.url));
export type Database = PgDatabase<PgQueryResultHKT, Schema>;

/** The rows of a raw `db.execute()`: postgres.js answers with the rows themselves, PGlite with { rows }. */
export function rowsOf<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

export interface DatabaseHandle {
  readonly db: Database;
  /**
   * A second, small pool: what learns the outcome of a write whose answer
   * didn't come must not queue behind the writes that filled the first.
   */
  readonly settler: Database;
  /** The postgres.js pool, absent on the embedded database (no COPY, no LISTEN). */
  readonly sql: postgres.Sql | undefined;
  readonly kind: "postgres" | "embedded";
  /** Where it is, for logs: host, port and database, never credentials. */
  readonly description: string;
  /** Applies the committed migrations that have not run yet. */
  migrate(): Promise<void>;
  close(): Promise<void>;
}

export interface PoolOptions {
  /** Connections in the pool. */
  max?: number;
  /** Longest wait for a new connection, and server-side cap on one statement. */
  timeoutSeconds?: number;
  /** Sees every query Drizzle runs. */
  logger?: Logger;
  /** The pool's application_name (a URL's ?application_name= wins). */
  applicationName?: string;
  /** When tracing is on: gives the pool's statements spans (server/telemetry). */
  tracing?: { statements(sql: postgres.Sql, database: string): void } | undefined;
}

/** Host, port and database of a PostgreSQL URL: safe to log. */
export function describeDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || "localhost"}:${u.port || 5432}${u.pathname || "/"}`;
  } catch {
    return "(unparseable DATABASE_URL)";
  }
}

/**
 * TLS as libpq users expect it: `sslmode=require` encrypts, `verify-ca` and
 * `verify-full` also verify the server with the CA file named by the URL's
 * `sslrootcert` or by PGSSLROOTCERT (else Node's trusted CAs). Returns the URL
 * without the parameters postgres.js would otherwise send to the server.
 */
export function postgresTls(
  url: string,
  env: NodeJS.ProcessEnv = process.env,
): { url: string; ssl?: ConnectionOptions } {
  const parsed = new URL(url);
  const mode = parsed.searchParams.get("sslmode");
  const rootCert = parsed.searchParams.get("sslrootcert") ?? env.PGSSLROOTCERT;
  parsed.searchParams.delete("sslrootcert");
  if ((mode !== "verify-ca" && mode !== "verify-full") || !rootCert || rootCert === "system")
    return { url: parsed.toString() };
  parsed.searchParams.delete("sslmode");
  return {
    url: parsed.toString(),
    ssl: {
      ca: readFileSync(rootCert),
      rejectUnauthorized: true,
      // verify-ca checks the chain only, as libpq does; verify-full the host name too.
      ...(mode === "verify-ca" ? { checkServerIdentity: () => undefined } : {}),
    },
  };
}

// Node's codes for a certificate that doesn't verify.
const certificateErrors =
  /^(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|CERT_UNTRUSTED|ERR_TLS_CERT_ALTNAME_INVALID)$/;

export function isCertificateError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && certificateErrors.test(code);
}

/** A connection error in words an operator can act on; for TLS, which setting to look at. */
export function describeConnectionError(error: unknown): string {
  let cause = error;
  while (cause instanceof Error && !(cause as { code?: unknown }).code && cause.cause) cause = cause.cause;
  const { code, message } = (cause ?? {}) as { code?: string; message?: string };
  const text = message ?? String(error);
  if (code && certificateErrors.test(code)) {
    return `the server's TLS certificate could not be verified (${text}): check the CA file in PGSSLROOTCERT or the URL's sslrootcert (PostgreSQL), or NODE_EXTRA_CA_CERTS (Valkey)`;
  }
  return text;
}

export function connectPostgres(url: string, options: PoolOptions = {}): DatabaseHandle {
  const tls = postgresTls(url);
  const pool = (max: number, applicationName: string) => {
    const sql = postgres(tls.url, {
      ...(tls.ssl ? { ssl: tls.ssl } : {}),
      max,
      connect_timeout: options.timeoutSeconds ?? 10,
      idle_timeout: 60,
      max_lifetime: 30 * 60,
      onnotice: () => {},
      connection: { application_name: applicationName, statement_timeout: (options.timeoutSeconds ?? 10) * 1000 },
    });
    options.tracing?.statements(sql, decodeURIComponent(new URL(tls.url).pathname.slice(1)));
    return sql;
  };
  const sql = pool(options.max ?? 10, options.applicationName ?? "dellstore-orders");
  const settlerSql = pool(2, "dellstore-orders-settle");
  const db = drizzlePostgres(sql, { schema, logger: options.logger });
  return {
    db,
    settler: drizzlePostgres(settlerSql, { schema }),
    sql,
    kind: "postgres",
    description: describeDatabaseUrl(url),
    migrate: () => migratePostgres(db, { migrationsFolder }),
    close: async () => {
      await Promise.all([sql.end({ timeout: 5 }), settlerSql.end({ timeout: 1 })]);
    },
  };
}

export async function openEmbedded(dataDir: string): Promise<DatabaseHandle> {
  await mkdir(dataDir, { recursive: true });
  const unlock = await lockDataDir(dataDir);
  let client: PGlite;
  try {
    client = await PGlite.create(`${dataDir}/pgdata`);
  } catch (error) {
    await unlock();
    throw error;
  }
  const db = drizzlePglite(client, { schema });
  return {
    db,
    settler: db,
    sql: undefined,
    kind: "embedded",
    description: `embedded PGlite in ${dataDir}/pgdata`,
    migrate: () => migratePglite(db, { migrationsFolder }),
    close: async () => {
      await client.close();
      await unlock();
    },
  };
}

/** The configured PostgreSQL server, or the embedded database when there is none. */
export function openDatabase(url: string | undefined, dataDir: string, options?: PoolOptions): Promise<DatabaseHandle> {
  return url ? Promise.resolve(connectPostgres(url, options)) : openEmbedded(dataDir);
}
