// Connection errors that waiting won't cure: the URL's password, role or TLS
// setting is wrong. Start-up stops on these with one line naming what to fix,
// instead of serving 503 until someone reads the logs; an unreachable server
// may still come up, so it is not one of them.
import { describeConnectionError, isCertificateError } from "../db/client.ts";

function codeOf(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && typeof e === "object" && depth < 8; depth++) {
    const { code } = e as { code?: unknown };
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** What to fix in the database settings, or undefined when the error may pass by itself. */
export function databaseMisconfiguration(error: unknown, description: string): string | undefined {
  const code = codeOf(error);
  const said = describeConnectionError(error);
  // invalid_password: PostgreSQL never echoes the password, so its message is safe to quote.
  if (code === "28P01")
    return `PostgreSQL at ${description} refused the password (${said}): check the password in DATABASE_URL`;
  // invalid_authorization_specification: an unknown role, or no pg_hba.conf line for this user, database or TLS mode.
  if (code === "28000") {
    return `PostgreSQL at ${description} refused the connection (${said}): check the user in DATABASE_URL, and its sslmode if the server requires TLS`;
  }
  if (code !== undefined && isCertificateError({ code })) return said;
  if (/before secure TLS connection was established/.test(said)) {
    return `PostgreSQL at ${description} closed the connection when asked for TLS (${said}): it may not accept TLS; check sslmode in DATABASE_URL`;
  }
  return undefined;
}
