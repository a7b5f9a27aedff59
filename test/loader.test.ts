import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { copyContext } from "../db/load/copy-in.ts";
import { loadDump } from "../db/load/dump.ts";
import { DumpFormatError } from "../db/load/dump-reader.ts";
import { useTestDatabase } from "./support/database.ts";
import { escapedAddress, fixturePath, writeFullDump } from "./support/dump-writer.ts";
import { germanMessages, howToAddCatalog, howToAddGerman } from "./support/german.ts";

const db = useTestDatabase("empty");
let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "dellstore-dump-"));
});
beforeEach(async () => {
  await db.sql`TRUNCATE orders, customers RESTART IDENTITY`;
});

const counts = async () => {
  const [row] = await db.sql<{ customers: number; orders: number }[]>`
    SELECT (SELECT count(*) FROM customers)::int AS customers, (SELECT count(*) FROM orders)::int AS orders`;
  return row;
};

describe("loading the sample dump", () => {
  it("loads customers and orders, skips the other tables and reports them", async () => {
    const report = await loadDump(db.sql, fixturePath);
    expect(report).toEqual({
      loaded: { customers: 4, orders: 3 },
      skipped: { categories: 3, cust_hist: 3, inventory: 3, orderlines: 3, products: 3, reorder: 0 },
    });
    const orders =
      await db.sql`SELECT orderid, orderdate::text, customerid, netamount, tax, totalamount FROM orders ORDER BY orderid`;
    expect(orders[1]).toEqual({
      orderid: 2,
      orderdate: "2004-01-01",
      customerid: 42,
      netamount: "23.59",
      tax: "1.95",
      totalamount: "25.54",
    });
  });

  it("keeps COPY's backslash escapes and NULLs", async () => {
    await loadDump(db.sql, fixturePath);
    const rows = await db.sql`SELECT customerid, address2 FROM customers WHERE customerid IN (1, 42) ORDER BY 1`;
    expect(rows).toEqual([
      { customerid: 1, address2: null },
      { customerid: 42, address2: "Apt 5\\B" },
    ]);
  });

  it("advances the sequences past the loaded ids", async () => {
    await loadDump(db.sql, fixturePath);
    const [next] =
      await db.sql`SELECT nextval('orders_orderid_seq')::int AS orderid, nextval('customers_customerid_seq')::int AS customerid`;
    expect(next).toEqual({ orderid: 4, customerid: 43 });
  });

  it("refuses to load into tables that hold data, and replaces them with reset", async () => {
    await loadDump(db.sql, fixturePath);
    await expect(loadDump(db.sql, fixturePath)).rejects.toThrow(/refusing to load.*--reset/);
    expect(await counts()).toEqual({ customers: 4, orders: 3 });
    await db.sql`DELETE FROM orders WHERE orderid = 3`;
    await loadDump(db.sql, fixturePath, { reset: true });
    expect(await counts()).toEqual({ customers: 4, orders: 3 });
  });
});

describe("loading a full-size dump", () => {
  const rows = 60_000;
  let path = "";
  beforeAll(async () => {
    path = join(dir, "full.sql");
    await writeFullDump(path, rows);
  });

  it("loads 60,000 customers and 60,000 orders with their escapes", async () => {
    const started = performance.now();
    const report = await loadDump(db.sql, path);
    const seconds = (performance.now() - started) / 1000;
    console.log(`full-size dump (${rows} rows in each of six tables) loaded in ${seconds.toFixed(2)} s`);
    expect(report.loaded).toEqual({ customers: rows, orders: rows });
    expect(report.skipped).toEqual({
      categories: 16,
      cust_hist: rows,
      inventory: rows,
      orderlines: rows,
      products: rows,
      reorder: 0,
    });
    const [escaped] =
      await db.sql`SELECT count(*)::int AS n, min(address2) AS address2 FROM customers WHERE address2 IS NOT NULL`;
    expect(escaped).toEqual({ n: Math.floor(rows / 7), address2: escapedAddress.value });
    const [totals] = await db.sql`SELECT count(*)::int AS n FROM orders WHERE totalamount <> netamount + tax`;
    expect(totals?.n).toBe(0);
  });

  /** The full dump with one orders row (0 = the first) edited; its path and that row's line. */
  async function withOrdersRow(name: string, pick: (rows: number) => number, edit: (fields: string[]) => void) {
    const lines = (await readFile(path, "utf8")).split("\n");
    const line = lines.findIndex((l) => l.startsWith("COPY orders ")) + 2 + pick(rows);
    const fields = (lines[line - 1] as string).split("\t");
    edit(fields);
    lines[line - 1] = fields.join("\t");
    const damaged = join(dir, `${name}.sql`);
    await writeFile(damaged, lines.join("\n"));
    return { path: damaged, line };
  }

  // PostgreSQL refuses it while most of the block is still to be sent.
  it("fails on a date that doesn't exist in the first of 60,000 orders, at its line, loading nothing", async () => {
    const damaged = await withOrdersRow(
      "full-bad-date",
      () => 0,
      (f) => f.splice(1, 1, "2004-13-15"),
    );
    const error = await loadDump(db.sql, damaged.path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DumpFormatError);
    expect((error as DumpFormatError).message).toMatch(/orders\.orderdate: date\/time field value out of range/);
    expect((error as DumpFormatError).line).toBe(damaged.line);
    expect(await counts()).toEqual({ customers: 0, orders: 0 });
  });

  // PostgreSQL refuses it only after the block's end, which the driver doesn't report: the block is sent again.
  it("fails on the last of 60,000 orders naming a customer the dump lacks, loading nothing", async () => {
    const damaged = await withOrdersRow(
      "full-orphan",
      (n) => n - 1,
      (f) => f.splice(2, 1, "999999"),
    );
    const error = await loadDump(db.sql, damaged.path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DumpFormatError);
    expect((error as DumpFormatError).message).toMatch(/violates foreign key constraint.*\(customerid\)=\(999999\)/);
    expect((error as DumpFormatError).line).toBe(damaged.line - rows); // the COPY's line: the error names no row
    expect(await counts()).toEqual({ customers: 0, orders: 0 });
  });
});

describe("a malformed dump", () => {
  let fixture = "";
  beforeAll(async () => {
    fixture = await readFile(fixturePath, "utf8");
  });

  /** Writes the fixture with one edit and returns its path and the edited line's number. */
  async function damaged(name: string, edit: (text: string) => string): Promise<string> {
    const path = join(dir, `${name}.sql`);
    await writeFile(path, edit(fixture));
    return path;
  }
  const lineOf = (text: string) => fixture.slice(0, fixture.indexOf(text)).split("\n").length;

  const cases: [string, (text: string) => string, () => number, RegExp][] = [
    [
      "a date that doesn't exist",
      (t) => t.replace("2\t2004-01-01\t42", "2\t2004-13-01\t42"),
      () => lineOf("2\t2004-01-01\t42"),
      /orders\.orderdate: date\/time field value out of range/,
    ],
    [
      "a row with a field missing",
      (t) => t.replace("3\t2004-01-01\t42\t5.16\t", "3\t2004-01-01\t42\t"),
      () => lineOf("3\t2004-01-01\t42\t5.16"),
      /orders row has 5 fields, expected 6/,
    ],
    [
      "an order of a customer the dump lacks",
      (t) => t.replace("1\t2004-01-01\t1\t288.30", "1\t2004-01-01\t77\t288.30"),
      () => lineOf("COPY orders"),
      /violates foreign key constraint.*\(customerid\)=\(77\)/,
    ],
    [
      "a COPY block cut off before its \\. line",
      (t) => t.slice(0, t.indexOf("3\t2004-01-01\t42")),
      () => lineOf("COPY orders"),
      /COPY orders has no terminating "\\\." line/,
    ],
    [
      "a function body that never closes",
      (t) => t.slice(0, t.indexOf("  END;\n$_$")),
      () => lineOf("CREATE FUNCTION new_customer"),
      /\$_\$-quoted body is never closed/,
    ],
    [
      "text that is not SQL",
      (t) => t.replace("ALTER TABLE public.orders OWNER", "this is not sql\nALTER TABLE public.orders OWNER"),
      () => lineOf("ALTER TABLE public.orders OWNER"),
      /not a pg_dump statement/,
    ],
    [
      "a COPY of columns the schema lacks",
      (t) => t.replace("COPY orders (orderid,", "COPY orders (coupon, orderid,"),
      () => lineOf("COPY orders"),
      /COPY orders names columns this schema lacks: coupon/,
    ],
  ];

  it.each(cases)(
    "fails on %s with its line number and leaves the database as it was",
    async (name, edit, line, message) => {
      await loadDump(db.sql, fixturePath);
      const before = await counts();
      const path = await damaged(name.replaceAll(/\W+/g, "-"), edit);
      const error = await loadDump(db.sql, path, { reset: true }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DumpFormatError);
      expect((error as DumpFormatError).line).toBe(line());
      expect((error as DumpFormatError).message).toMatch(message);
      expect((error as DumpFormatError).message).toContain(`${path}:${line()}:`);
      expect(await counts()).toEqual(before);
      const [{ state } = { state: "" }] = await db.sql`
      SELECT coalesce(max(state), 'none') AS state FROM pg_stat_activity
      WHERE datname = current_database() AND state LIKE 'idle in transaction%'`;
      expect(state).toBe("none");
    },
  );
});

// PostgreSQL translates COPY's context ("COPY orders, Zeile 2, Spalte orderdate"
// in German): the row and column are found without reading its words.
describe("a malformed dump, with PostgreSQL's messages in German", () => {
  let german: postgres.Sql;
  beforeAll(() => {
    german = postgres(db.url, { max: 1, onnotice: () => {}, connection: { lc_messages: germanMessages } });
  });
  // Checked before each test, not once before all: a failing beforeAll would only skip them.
  beforeEach(async () => {
    const said = await german`SELECT 1/0`.then(
      () => undefined,
      (e: unknown) => e as postgres.PostgresError,
    );
    // 22023 invalid_parameter_value: PostgreSQL could not setlocale() to it.
    if (said && said.code !== "22012") throw new Error(`${howToAddGerman} (PostgreSQL said: ${said.message})`);
    expect(said?.message, howToAddCatalog).toBe("Division durch Null");
  });
  afterAll(async () => {
    await german?.end();
  });

  it("names the dump's line and column of a value PostgreSQL refused", async () => {
    const fixture = await readFile(fixturePath, "utf8");
    const path = join(dir, "german-bad-date.sql");
    await writeFile(path, fixture.replace("2\t2004-01-01\t42", "2\t2004-13-01\t42"));
    const line = fixture.slice(0, fixture.indexOf("2\t2004-01-01\t42")).split("\n").length;
    const error = await loadDump(german, path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DumpFormatError);
    expect((error as DumpFormatError).line).toBe(line);
    expect((error as DumpFormatError).message).toContain(`${path}:${line}: orders.orderdate: `);
  });
});

describe("COPY's context, in the languages PostgreSQL speaks", () => {
  // PostgreSQL 15's own translations of "COPY %s, line %llu, column %s: "%s"", and a trigger's line before it.
  it.each([
    ["English", 'COPY orders, line 7, column tax: "x"'],
    ["German", "COPY orders, Zeile 7, Spalte tax: »x«"],
    ["French", "COPY orders, ligne 7, colonne tax : « x »"],
    ["Japanese", 'ordersのCOPY、行 7、列 tax: "x"'],
    ["Korean", 'orders 복사, 7번째 줄, tax 열: "x"'],
    ["Chinese", 'COPY orders, 第 7 行, 列 tax: "x"'],
    [
      "a trigger's context first",
      "PL/pgSQL function orders_check() line 3 at RAISE\nCOPY orders, Zeile 7, Spalte tax: »x«",
    ],
  ])("%s", (_, where) => {
    expect(copyContext(where, "orders", ["orderid", "netamount", "tax"])).toEqual({ row: 7, column: "tax" });
  });

  it("names no column when PostgreSQL names none, and no row without a COPY line", () => {
    expect(copyContext("COPY orders, Zeile 7: »1\t2«", "orders", ["orderid", "tax"])).toEqual({ row: 7 });
    expect(copyContext("", "orders", ["orderid"])).toEqual({});
  });
});
