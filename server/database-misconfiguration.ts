// What a failed PostgreSQL connection means, said so that a person can act on
// it: which server and database (host:port/dbname, never the password or the
// whole URL), and which setting to look at.
//
// Start-up stops on the errors that waiting won't cure (the URL's password,
// role or TLS setting is wrong) instead of serving 503 until someone reads the
// logs; an unreachable server may still come up, so it is not one of them. The
// db scripts (migrate, seed) stop on anything, and say every kind of failure.
import { describeConnectionError, describeDatabaseUrl, isCertificateError } from "../db/client.ts";
import { configuredDatabaseUrl } from "./config.ts";

function codeOf(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && typeof e === "object" && depth < 8; depth++) {
    const { code } = e as { code?: unknown };
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Where the password came from: postgres.js takes the URL's, else PGPASSWORD, else sends none. */
function passwordSource(url: string | undefined, env: NodeJS.ProcessEnv): "DATABASE_URL" | "PGPASSWORD" | "none" {
  if (url === undefined || !URL.canParse(url)) return "DATABASE_URL"; // unknown: the URL is the one to check
  if (new URL(url).password) return "DATABASE_URL";
  return env.PGPASSWORD ? "PGPASSWORD" : "none";
}

/**
 * What to fix in the database settings, or undefined when the error may pass by
 * itself. `url` is the configured URL, to tell a wrong password from a missing
 * one: by default the one the environment gives, as `npm start` reads it.
 */
export function databaseMisconfiguration(
  error: unknown,
  description: string,
  url: string | undefined = configuredDatabaseUrl(),
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const code = codeOf(error);
  const said = describeConnectionError(error);
  // invalid_password: PostgreSQL never echoes the password, so its message is safe to quote.
  if (code === "28P01") {
    const source = passwordSource(url, env);
    if (source === "none") {
      return `PostgreSQL at ${description} asked for a password, and DATABASE_URL has none (${said}): put it in the URL (as user:password@host) or in PGPASSWORD`;
    }
    return `PostgreSQL at ${description} refused the password (${said}): check the password in ${source}`;
  }
  // invalid_authorization_specification: an unknown role, or no pg_hba.conf line for this user, database or TLS mode.
  if (code === "28000") {
    return `PostgreSQL at ${description} refused the connection (${said}): check the user in DATABASE_URL, and its sslmode if the server requires TLS`;
  }
  // Already names the setting to fix (and test/tls.test.ts holds db:migrate to starting with it).
  if (code !== undefined && isCertificateError({ code })) return said;
  if (/before secure TLS connection was established/.test(said)) {
    return `PostgreSQL at ${description} closed the connection when asked for TLS (${said}): it may not accept TLS; check sslmode in DATABASE_URL`;
  }
  return undefined;
}

/**
 * Any failure of a db script, in one line: a connection that failed names the
 * server and database it was for, and what to check; anything else is said as
 * it was. `url` undefined: the embedded database, which has no server to name.
 */
export function describeDatabaseFailure(
  error: unknown,
  url: string | undefined = configuredDatabaseUrl(),
  env: NodeJS.ProcessEnv = process.env,
): string {
  const said = describeConnectionError(error);
  if (url === undefined || !URL.canParse(url)) return said;
  const where = describeDatabaseUrl(url);
  const misconfigured = databaseMisconfiguration(error, where, url, env);
  if (misconfigured) return misconfigured;
  const { hostname } = new URL(url);
  switch (codeOf(error)) {
    case "ECONNREFUSED":
      return `cannot reach PostgreSQL at ${where} (${said}): is it running there, and are the host and port in DATABASE_URL right?`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `cannot reach PostgreSQL at ${where} (${said}): no host is named ${hostname || "localhost"}; check the host in DATABASE_URL`;
    case "ETIMEDOUT":
    case "CONNECT_TIMEOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `cannot reach PostgreSQL at ${where} (${said}): no answer; is the host in DATABASE_URL right, and does a firewall let this machine through?`;
    case "ECONNRESET":
    case "CONNECTION_CLOSED":
    case "CONNECTION_DESTROYED":
      return `PostgreSQL at ${where} closed the connection (${said})`;
    // invalid_catalog_name
    case "3D000":
      return `PostgreSQL at ${host(url)} has no database ${database(url)} (${said}): create it with \`${createdb(url)}\``;
    default:
      return said;
  }
}

const host = (url: string) => describeDatabaseUrl(url).replace(/\/.*$/, "");
const database = (url: string) => decodeURIComponent(new URL(url).pathname.slice(1));

/** The createdb line for the URL's database: host, port, user and name; never the password. */
function createdb(url: string): string {
  const u = new URL(url);
  return [
    "createdb",
    u.hostname && `-h ${u.hostname}`,
    u.port && `-p ${u.port}`,
    u.username && `-U ${decodeURIComponent(u.username)}`,
    database(url),
  ]
    .filter(Boolean)
    .join(" ");
}
