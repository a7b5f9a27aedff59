// Loads the customers and orders blocks of a dellstore pg_dump into the
// migrated schema: streamed, through COPY FROM STDIN, all in one transaction,
// so a damaged file leaves the database exactly as it was.
import { getTableColumns } from "drizzle-orm";
import type postgres from "postgres";
import { customers, orders } from "../schema.ts";
import { CopyRefusedAfterEnd, copyContext, copyRows, copyThroughStaging, refusedRow } from "./copy-in.ts";
import { type CopyBlock, DumpFormatError, readDump } from "./dump-reader.ts";
import { advanceSequencesSql, assertEmpty, type LoadedTable, noStatementTimeoutSql, resetTablesSql } from "./tables.ts";

export interface DumpLoadOptions {
  reset?: boolean;
  /** Called as the file is read. */
  onBytes?: (bytesRead: number) => void;
}

export interface DumpLoadReport {
  loaded: Record<LoadedTable, number>;
  /** Tables in the dump that this service doesn't model, with their row counts. */
  skipped: Record<string, number>;
}

const targets: Record<LoadedTable, string[]> = {
  customers: columnNames(customers),
  orders: columnNames(orders),
};

function columnNames(table: typeof customers | typeof orders): string[] {
  return Object.values(getTableColumns(table)).map((column) => column.name);
}

const isTarget = (table: string): table is LoadedTable => Object.hasOwn(targets, table);

export async function loadDump(
  sql: postgres.Sql,
  path: string,
  options: DumpLoadOptions = {},
): Promise<DumpLoadReport> {
  const report: DumpLoadReport = { loaded: { customers: 0, orders: 0 }, skipped: {} };
  await sql.begin(async (tx) => {
    await tx.unsafe(noStatementTimeoutSql);
    if (options.reset) await tx.unsafe(resetTablesSql);
    else {
      const [counts] = await tx<Record<LoadedTable, number>[]>`
        SELECT (SELECT count(*) FROM customers)::int AS customers, (SELECT count(*) FROM orders)::int AS orders`;
      if (counts) assertEmpty(counts);
    }
    for await (const block of readDump(path, { onBytes: options.onBytes })) {
      if (isTarget(block.table)) {
        report.loaded[block.table] += await copyBlock(tx, block, block.table, path);
      } else {
        let rows = 0;
        for await (const _ of block.rows) rows++;
        report.skipped[block.table] = (report.skipped[block.table] ?? 0) + rows;
      }
    }
    if (report.loaded.customers + report.loaded.orders === 0 && Object.keys(report.skipped).length === 0) {
      throw new DumpFormatError(path, 1, "no COPY data blocks found: is this a plain-text pg_dump?");
    }
    await tx.unsafe(advanceSequencesSql);
  });
  return report;
}

async function copyBlock(
  tx: postgres.TransactionSql,
  block: CopyBlock,
  table: LoadedTable,
  path: string,
): Promise<number> {
  const known = targets[table];
  const columns = block.columns ?? known;
  const unknown = columns.filter((c) => !known.includes(c));
  if (unknown.length > 0) {
    throw new DumpFormatError(path, block.line, `COPY ${table} names columns this schema lacks: ${unknown.join(", ")}`);
  }
  const target = { table, columns };
  let rows = 0;
  async function* checked() {
    for await (const row of block.rows) {
      rows++;
      const fields = row.split("\t").length;
      if (fields !== columns.length) {
        throw new DumpFormatError(
          path,
          block.line + rows,
          `${table} row has ${fields} fields, expected ${columns.length}`,
        );
      }
      yield row;
    }
  }
  try {
    // In a savepoint, so that a COPY refused after its end can be sent again to learn why.
    await tx.savepoint((savepoint) => copyRows(savepoint, target, checked()));
    return rows;
  } catch (error) {
    if (!(error instanceof CopyRefusedAfterEnd)) throw locateCopyError(error, block, columns, path);
  }
  // The driver dropped PostgreSQL's reason: send the block again in the ways that report it.
  const again = () => blockRows(path, block.line);
  const refusal = await refusedRow(tx, target, again());
  if (refusal !== undefined) throw locateCopyError(refusal, block, columns, path);
  try {
    await copyThroughStaging(tx, target, again());
  } catch (error) {
    // An INSERT's error names no row of the COPY (a trigger's context may name the table): it is the block's.
    throw locateCopyError(error, block, columns, path, { rowless: true });
  }
  // Refused once, taken when sent again (what refused it has gone): loaded all the same.
  return rows;
}

/** The rows of the file's COPY block on that line, read again from the start of the file. */
async function* blockRows(path: string, line: number): AsyncGenerator<string> {
  for await (const block of readDump(path)) {
    if (block.line === line) {
      yield* block.rows;
      return;
    }
  }
  throw new DumpFormatError(path, line, "the COPY block on this line is gone: did the file change during the load?");
}

/**
 * Turns PostgreSQL's "COPY orders, line 7, column …" into the dump file's own
 * line number (the block's own line when the error is rowless or names no row).
 */
function locateCopyError(
  error: unknown,
  block: CopyBlock,
  columns: string[],
  path: string,
  { rowless = false } = {},
): unknown {
  if (error instanceof DumpFormatError || !(error instanceof Error)) return error;
  const where = (error as { where?: string }).where;
  const { row, column } = rowless ? {} : copyContext(where ?? "", block.table, columns);
  const detail = (error as { detail?: string }).detail;
  const line = row === undefined ? block.line : block.line + row;
  const message = `${block.table}${column ? `.${column}` : ""}: ${error.message}${detail ? ` (${detail})` : ""}`;
  return new DumpFormatError(path, line, message);
}
