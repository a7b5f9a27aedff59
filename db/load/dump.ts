// Loads the customers and orders blocks of a dellstore pg_dump into the
// migrated schema: streamed, through COPY FROM STDIN, all in one transaction,
// so a damaged file leaves the database exactly as it was.
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { getTableColumns } from "drizzle-orm";
import type postgres from "postgres";
import { customers, orders } from "../schema.ts";
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

// Rows go to PostgreSQL in chunks of about this many characters, not one message per row.
const chunkSize = 64 * 1024;

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
  let rows = 0;
  async function* chunks() {
    let chunk = "";
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
      chunk += `${row}\n`;
      if (chunk.length >= chunkSize) {
        yield chunk;
        chunk = "";
      }
    }
    if (chunk) yield chunk;
  }
  const writable = await tx`COPY ${tx(table)} (${tx(columns)}) FROM STDIN`.writable();
  try {
    await pipeline(Readable.from(chunks(), { objectMode: false }), writable);
  } catch (error) {
    throw locateCopyError(error, block, columns, path);
  }
  return rows;
}

/** Turns PostgreSQL's "COPY orders, line 7, column …" into the dump file's own line number. */
function locateCopyError(error: unknown, block: CopyBlock, columns: string[], path: string): unknown {
  if (error instanceof DumpFormatError || !(error instanceof Error)) return error;
  const { row, column } = copyContext((error as { where?: string }).where ?? "", block.table, columns);
  const detail = (error as { detail?: string }).detail;
  const line = row === undefined ? block.line : block.line + row;
  const message = `${block.table}${column ? `.${column}` : ""}: ${error.message}${detail ? ` (${detail})` : ""}`;
  return new DumpFormatError(path, line, message);
}

/**
 * The row (1 = the block's first) and column that PostgreSQL's COPY context
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
