// Streams a plain-text pg_dump and yields its COPY data blocks, one row (line)
// at a time, without holding the file in memory. Between blocks it scans SQL
// just enough to find statement boundaries: quotes, dollar-quoted function
// bodies (which contain semicolons), comments and psql meta-commands.
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";

export class DumpFormatError extends Error {
  override name = "DumpFormatError";
  constructor(
    readonly source: string,
    readonly line: number,
    detail: string,
  ) {
    super(`${source}:${line}: ${detail}`);
  }
}

export interface CopyBlock {
  /** Unqualified, lower-case table name. */
  table: string;
  /** Column names, or undefined when the statement lists none (table order). */
  columns: string[] | undefined;
  /** Line number of the COPY statement; row k of the block is on line + k. */
  line: number;
  /** The block's data lines in PostgreSQL's text format, "\." excluded. Must be read in turn. */
  rows: AsyncIterable<string>;
}

export interface DumpReadOptions {
  /** Called as bytes are read, for progress displays. */
  onBytes?: (bytesRead: number) => void;
}

// Commands a plain-text pg_dump writes; anything else between blocks means the
// file is not a dump (or is damaged), and is reported rather than skipped.
const dumpCommands = new Set([
  "ALTER",
  "BEGIN",
  "COMMENT",
  "COMMIT",
  "COPY",
  "CREATE",
  "DROP",
  "GRANT",
  "INSERT",
  "REVOKE",
  "SELECT",
  "SET",
  "START",
  "TRUNCATE",
]);

const copyStatement =
  /^COPY\s+(?:ONLY\s+)?(?:("?)([A-Za-z_][\w$]*)\1\.)?("?)([A-Za-z_][\w$]*)\3\s*(?:\(([^)]*)\))?\s+FROM\s+stdin\s*;$/i;
const conformingStrings = /^SET\s+standard_conforming_strings\s*(?:=|TO)\s*'?(on|off)'?\s*;$/i;
const dollarTag = /\$(?:[A-Za-z_][\w]*)?\$/y;

type ScanState = "code" | "single" | "escaped-single" | "double" | "dollar" | "comment";

/** Finds where SQL statements end, line by line, across quotes and bodies. */
class StatementScanner {
  private state: ScanState = "code";
  private tag = "";
  private commentDepth = 0;
  private text = "";
  private startLine = 0;
  standardConformingStrings = true;

  /** Feeds one line; returns the statements it completed (with their first line). */
  feed(line: string, lineNumber: number): { text: string; line: number }[] {
    const done: { text: string; line: number }[] = [];
    let from = 0;
    let i = 0;
    const take = (end: number) => {
      this.text += line.slice(from, end);
      from = end;
    };
    if (this.state === "code" && this.startLine === 0 && line.startsWith("\\")) return done; // psql meta-command
    while (i < line.length) {
      const c = line[i];
      switch (this.state) {
        case "code":
          if (c === "-" && line[i + 1] === "-") {
            take(i);
            from = i = line.length;
            continue;
          }
          if (c === "/" && line[i + 1] === "*") {
            this.state = "comment";
            this.commentDepth = 1;
            take(i);
            i += 2;
            from = i;
            continue;
          }
          if (this.startLine === 0 && c !== " " && c !== "\t") this.startLine = lineNumber;
          if (c === "'") {
            const prefix = line[i - 1];
            this.state =
              !this.standardConformingStrings || ((prefix === "E" || prefix === "e") && !/\w/.test(line[i - 2] ?? ""))
                ? "escaped-single"
                : "single";
          } else if (c === '"') this.state = "double";
          else if (c === "$") {
            dollarTag.lastIndex = i;
            const m = dollarTag.exec(line);
            if (m && !/[\w$]/.test(line[i - 1] ?? "")) {
              this.state = "dollar";
              this.tag = m[0];
              i += m[0].length;
              continue;
            }
          } else if (c === ";") {
            take(i + 1);
            done.push({ text: this.text.trim(), line: this.startLine });
            this.text = "";
            this.startLine = 0;
          }
          i++;
          break;
        case "single":
        case "escaped-single":
          if (c === "\\" && this.state === "escaped-single") i += 2;
          else if (c === "'") {
            if (line[i + 1] === "'") i += 2;
            else {
              this.state = "code";
              i++;
            }
          } else i++;
          break;
        case "double":
          if (c === '"') {
            if (line[i + 1] === '"') i += 2;
            else {
              this.state = "code";
              i++;
            }
          } else i++;
          break;
        case "dollar":
          if (line.startsWith(this.tag, i)) {
            this.state = "code";
            i += this.tag.length;
          } else i++;
          break;
        case "comment":
          if (c === "*" && line[i + 1] === "/") {
            i += 2;
            if (--this.commentDepth === 0) {
              this.state = "code";
              from = i;
            }
          } else if (c === "/" && line[i + 1] === "*") {
            this.commentDepth++;
            i += 2;
          } else i++;
          break;
      }
    }
    if (this.state !== "comment") take(line.length);
    if (this.text.trim() !== "") this.text += "\n";
    return done;
  }

  /** What is still open at the end of the file, if anything. */
  unfinished(): string | undefined {
    if (this.state === "single" || this.state === "escaped-single") return "a quoted string is never closed";
    if (this.state === "double") return "a quoted identifier is never closed";
    if (this.state === "dollar") return `a ${this.tag}-quoted body is never closed`;
    if (this.state === "comment") return "a /* comment is never closed";
    if (this.text.trim() !== "") return "the last statement has no terminating ';'";
    return undefined;
  }

  get pendingLine(): number {
    return this.startLine;
  }
}

/** Yields the dump's COPY blocks in file order; each block's rows must be read before the next block. */
export async function* readDump(path: string, options: DumpReadOptions = {}): AsyncGenerator<CopyBlock> {
  const stream = createReadStream(path);
  const { onBytes } = options;
  if (onBytes) stream.on("data", () => onBytes(stream.bytesRead));
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })[Symbol.asyncIterator]();
  const scanner = new StatementScanner();
  let lineNumber = 0;
  try {
    for (;;) {
      const next = await lines.next();
      if (next.done) break;
      lineNumber++;
      for (const statement of scanner.feed(next.value, lineNumber)) {
        const block = parseStatement(statement.text, statement.line, scanner, path);
        if (!block) continue;
        let finished = false;
        const rows = async function* () {
          for (;;) {
            const row = await lines.next();
            if (row.done)
              throw new DumpFormatError(path, block.line, `COPY ${block.table} has no terminating "\\." line`);
            lineNumber++;
            if (row.value === "\\.") break;
            yield row.value;
          }
          finished = true;
        };
        const iterator = rows();
        yield { ...block, rows: { [Symbol.asyncIterator]: () => iterator } };
        if (!finished) for await (const _ of iterator); // the caller skipped the block: drain it
      }
    }
    const problem = scanner.unfinished();
    if (problem) throw new DumpFormatError(path, scanner.pendingLine, problem);
  } finally {
    stream.destroy();
  }
}

function parseStatement(
  text: string,
  line: number,
  scanner: StatementScanner,
  source: string,
): Omit<CopyBlock, "rows"> | undefined {
  const command = /^[A-Za-z]+/.exec(text)?.[0]?.toUpperCase();
  if (!command || !dumpCommands.has(command)) {
    throw new DumpFormatError(
      source,
      line,
      `unexpected text ${JSON.stringify(text.slice(0, 40))}: not a pg_dump statement`,
    );
  }
  if (command === "SET") {
    const scs = conformingStrings.exec(text);
    if (scs) scanner.standardConformingStrings = scs[1]?.toLowerCase() === "on";
    return undefined;
  }
  if (command !== "COPY") return undefined;
  const copy = copyStatement.exec(text);
  if (!copy)
    throw new DumpFormatError(source, line, "COPY statement is not of the form COPY table (columns) FROM stdin;");
  const [, schemaQuote, schema, tableQuote, table, columnList] = copy;
  const unquote = (name: string, quoted: boolean) => (quoted ? name : name.toLowerCase());
  return {
    table:
      schema && unquote(schema, !!schemaQuote) !== "public" ? `${schema}.${table}` : unquote(table ?? "", !!tableQuote),
    columns: columnList?.split(",").map((c) => {
      const name = c.trim();
      return name.startsWith('"') ? name.slice(1, -1).replaceAll('""', '"') : name.toLowerCase();
    }),
    line,
  };
}
