// Classifies what a database call threw, through Drizzle's and tRPC's wrappers,
// so that callers see NOT_FOUND or SERVICE_UNAVAILABLE instead of a 500.

/** The errors a failed call was wrapped in, outermost first. */
function* causes(error: unknown): Generator<Record<string, unknown>> {
  for (let e = error, depth = 0; e && typeof e === "object" && depth < 8; depth++) {
    yield e as Record<string, unknown>;
    e = (e as { cause?: unknown }).cause;
  }
}

function codes(error: unknown): string[] {
  return [...causes(error)].flatMap((e) => (typeof e.code === "string" ? [e.code] : []));
}

// Socket errors, postgres.js's own connection errors, and SQLSTATEs meaning the
// server can't serve us right now (connection exceptions, shutdown, overload,
// bad credentials or a missing database, a statement cut off by its timeout).
const unavailableCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01",
  "57P02",
  "57P03",
  "53300",
  "3D000",
  "57014",
  // lock_not_available: a write's lock wait reached its deadline (add_order() sets lock_timeout).
  "55P03",
]);

export function isDatabaseUnavailable(error: unknown): boolean {
  return codes(error).some((code) => unavailableCodes.has(code) || /^(08|28)[0-9A-Z]{3}$/.test(code));
}

export function isForeignKeyViolation(error: unknown): boolean {
  return codes(error).includes("23503");
}

/** invalid_catalog_name: the URL names a database the server doesn't have. */
export function isMissingDatabase(error: unknown): boolean {
  return codes(error).includes("3D000");
}

/** serialization_failure, deadlock_detected: the attempt was rolled back and may simply be made again. */
export function isRetryableConflict(error: unknown): boolean {
  return codes(error).some((code) => code === "40001" || code === "40P01");
}

// Failures before any statement was sent: the connection was never made.
const neverSentCodes = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "CONNECT_TIMEOUT",
]);

// SQLSTATEs PostgreSQL only ever reports at ERROR level, so they prove the
// transaction aborted whatever the severity field says (or lacks): data
// exceptions, integrity constraint violations, serialization failures and
// deadlocks, syntax and access errors, and PL/pgSQL's RAISE EXCEPTION.
const errorOnlyCodes = /^(22|23|42|P0)[0-9A-Z]{3}$|^40001$|^40P01$/;

/**
 * The severity of a PostgreSQL error in English. postgres.js puts the
 * never-localized 'V' field in `severity` and the 'S' field, translated by
 * the server's lc_messages ("FEHLER" in German), in `severity_local`; only a
 * server older than 9.6 sends no 'V', and then 'S' is all there is.
 */
function severityOf(e: Record<string, unknown>): unknown {
  return e.severity ?? e.severity_local;
}

/**
 * Whether a failed call proves its transaction did not commit: PostgreSQL
 * answered the statement with an ERROR (which aborts the transaction, commit
 * included), or no connection was ever made. A FATAL (the session ended, e.g.
 * terminated while its commit waited for a standby), a reset or closed
 * connection, or anything else proves nothing. Decided from SQLSTATEs and the
 * never-localized severity only: a message's words depend on lc_messages.
 */
export function provesNotCommitted(error: unknown): boolean {
  for (const e of causes(error)) {
    const code = typeof e.code === "string" ? e.code : undefined;
    if (code === undefined) continue;
    if (neverSentCodes.has(code) || /^(28|3D)[0-9A-Z]{3}$/.test(code) || code === "53300" || code === "57P03") {
      return true;
    }
    if (errorOnlyCodes.test(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code) && severityOf(e) === "ERROR") return true;
  }
  return false;
}
