// COPY … FROM STDIN through postgres.js that settles however PostgreSQL answers.
//
// postgres.js 3.x fails the COPY's writable when PostgreSQL refuses the data
// while it is still being sent, but leaves it pending forever when the refusal
// comes after the end of the data (porsager/postgres#1173): a foreign key or a
// statement trigger checked at the end of the COPY, or a bad row PostgreSQL
// reached only after the last chunk had left. PostgreSQL's reason reaches no
// caller then. So once the data has ended, a query queued behind the COPY tells
// how it went: it runs after the COPY, and fails with 25P02 (current
// transaction is aborted) if the COPY failed. The reason itself is brought
// back by sending the rows again in the two ways that do report it:
// `refusedRow` for a row PostgreSQL refuses, `copyThroughStaging` for a check
// at the end of the statement.
import type { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import postgres from "postgres";

export interface CopyTarget {
  table: string;
  columns: string[];
}

/** PostgreSQL refused a COPY after the end of its data, and postgres.js didn't say why. */
export class CopyRefusedAfterEnd extends Error {
  override name = "CopyRefusedAfterEnd";
  constructor(readonly table: string) {
    super(`PostgreSQL refused COPY ${table} after the end of its data, and did not say why`);
  }
}

// Rows go to PostgreSQL in chunks of about this many characters, not one message per row.
const chunkSize = 64 * 1024;

/**
 * COPYs rows (lines of PostgreSQL's text format, without their newline) into
 * the target, in a transaction. Rejects with PostgreSQL's error when it refused
 * the data while it was being sent, with the rows' own error when reading them
 * failed (the COPY is then aborted), or with CopyRefusedAfterEnd. A failed COPY
 * aborts the transaction, as any failed statement does.
 */
export async function copyRows(
  sql: postgres.TransactionSql,
  target: CopyTarget,
  rows: AsyncIterable<string>,
): Promise<void> {
  const writable = await sql`COPY ${sql(target.table)} (${sql(target.columns)}) FROM STDIN`.writable();
  const outcome = settlement(writable);
  await send(writable, chunked(rows), outcome);
  if (writable.destroyed) return throwIfFailed(await outcome);
  writable.end();
  // The driver sends the end of the data (and takes queries again) in the
  // writable's _final, which Node calls from end() or, in some versions, a tick
  // later; a query issued before it would be refused with COPY_IN_PROGRESS.
  await new Promise((resolve) => setImmediate(resolve));
  // Settled already: refused before the end reached PostgreSQL, or even done.
  if (writable.destroyed) return throwIfFailed(await outcome);
  const failure = await sql`SELECT 1`.then(
    () => undefined,
    (error: unknown) => error,
  );
  // Success: the COPY's completion reached the writable before this answer did.
  if (failure === undefined) return throwIfFailed(await outcome);
  // A driver that reports such refusals has failed the writable by now, with PostgreSQL's reason.
  if (writable.errored) throw writable.errored;
  // Closed before anything else runs: the driver would hand the next statement's
  // completion (the ROLLBACK's) to this writable as if it were the COPY's.
  writable.destroy();
  if (failure instanceof postgres.PostgresError && failure.code === "25P02")
    throw new CopyRefusedAfterEnd(target.table);
  throw failure;
}

/**
 * The error PostgreSQL refuses the first bad row with, or undefined when it
 * takes every row. Sends the rows and then one it must refuse (a field too
 * many), without ending the data: the refusal then comes while the writable is
 * open, which postgres.js reports. Nothing stays loaded: the COPY always fails,
 * inside a savepoint that is rolled back.
 */
export async function refusedRow(
  sql: postgres.TransactionSql,
  target: CopyTarget,
  rows: AsyncIterable<string>,
): Promise<unknown> {
  let count = 0;
  async function* thenARefusal() {
    for await (const row of rows) {
      count++;
      yield row;
    }
    yield Array.from({ length: target.columns.length + 1 }, () => "\\N").join("\t");
  }
  const error = await sql
    .savepoint(async (savepoint) => {
      const writable =
        await savepoint`COPY ${savepoint(target.table)} (${savepoint(target.columns)}) FROM STDIN`.writable();
      const outcome = settlement(writable);
      await send(writable, chunked(thenARefusal()), outcome);
      // Never ended, so it settles only by a refusal or a lost connection.
      throw (await outcome) ?? new Error(`COPY ${target.table} finished without its end`);
    })
    .then(
      () => undefined,
      (error: unknown) => error,
    );
  const where = error instanceof postgres.PostgresError ? error.where : undefined;
  return copyContext(where ?? "", target.table, target.columns).row === count + 1 ? undefined : error;
}

/**
 * Loads rows whose every row PostgreSQL takes (see refusedRow) with one INSERT
 * from an unconstrained staging copy of them, so that what PostgreSQL checks at
 * the end of the statement (foreign keys, statement triggers) fails as a plain
 * query, whose error postgres.js reports. Rejects with that error, after
 * rolling back to before it; resolves once the rows are loaded.
 */
export async function copyThroughStaging(
  sql: postgres.TransactionSql,
  target: CopyTarget,
  rows: AsyncIterable<string>,
): Promise<void> {
  const staging = { table: "copy_staging", columns: target.columns };
  await sql.savepoint(async (savepoint) => {
    const [table, columns, copy] = [savepoint(target.table), savepoint(target.columns), savepoint(staging.table)];
    // Column types only: no constraints, defaults or triggers to refuse anything at the end.
    await savepoint`CREATE TEMP TABLE ${copy} ON COMMIT DROP AS SELECT ${columns} FROM ${table} WITH NO DATA`;
    await copyRows(savepoint, staging, rows);
    await savepoint`INSERT INTO ${table} (${columns}) SELECT ${columns} FROM ${copy}`;
    await savepoint`DROP TABLE ${copy}`;
  });
}

/**
 * The row (1 = the COPY's first) and column that PostgreSQL's COPY context
 * names. Its words follow lc_messages ("COPY orders, Zeile 7, Spalte tax: …",
 * "orders 복사, 7번째 줄, tax 열: …"), so none are read: the row is the first
 * number after the table's name, and the column is the block's column named
 * between it and the colon that starts the value. The COPY line is the
 * outermost context, so the last one: lines before it are a trigger's.
 */
export function copyContext(where: string, table: string, columns: string[]): { row?: number; column?: string } {
  const context = where
    .split("\n")
    .reverse()
    .find((line) => line.includes(table));
  if (context === undefined) return {};
  const after = context.slice(context.indexOf(table) + table.length);
  const number = /\d+/.exec(after);
  if (!number) return {};
  const named = after.slice(number.index + number[0].length).split(":")[0] ?? "";
  const words = new Set(named.split(/[^\p{L}\p{N}_$]+/u));
  return { row: Number(number[0]), column: columns.find((c) => words.has(c)) };
}

/** How the writable ended: undefined once it finished, its error otherwise. Never rejects. */
function settlement(writable: Writable): Promise<unknown> {
  return finished(writable).then(
    () => undefined,
    (error: unknown) => error,
  );
}

function throwIfFailed(error: unknown): void {
  if (error !== undefined) throw error;
}

/**
 * Writes the chunks, waiting for the driver when it asks to, until they run
 * out (and the driver has taken the last one) or the writable fails. When
 * reading the chunks fails, the COPY is aborted (postgres.js sends CopyFail)
 * and that error thrown.
 */
async function send(writable: Writable, chunks: AsyncIterable<string>, outcome: Promise<unknown>): Promise<void> {
  let taken: Promise<unknown> = Promise.resolve();
  try {
    for await (const chunk of chunks) {
      if (writable.destroyed) return;
      taken = new Promise((resolve) => writable.write(chunk, resolve));
      if (writable.writableNeedDrain) await Promise.race([once(writable, "drain"), outcome]);
    }
  } catch (error) {
    writable.destroy(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
  await Promise.race([taken, outcome]);
}

function once(writable: Writable, event: string): Promise<void> {
  return new Promise((resolve) => writable.once(event, () => resolve()));
}

async function* chunked(rows: AsyncIterable<string>): AsyncGenerator<string> {
  let chunk = "";
  for await (const row of rows) {
    chunk += `${row}\n`;
    if (chunk.length >= chunkSize) {
      yield chunk;
      chunk = "";
    }
  }
  if (chunk) yield chunk;
}
