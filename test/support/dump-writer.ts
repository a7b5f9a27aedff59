// Writes a full-size dump in dellstore's format: the sample fixture's own
// statements (SET lines, plpgsql functions, tables, constraints) with each COPY
// block refilled by generated rows that exercise NULLs and backslash escapes.

import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

export const fixturePath = fileURLToPath(new URL("../fixtures/dellstore-sample.sql", import.meta.url));

/** An address2 for every seventh customer, with an escaped backslash, tab and newline. */
export const escapedAddress = { text: "Apt 5\\\\B\\tcorner\\nrear", value: "Apt 5\\B\tcorner\nrear" };

const rowsFor: Record<string, (i: number, n: number) => string> = {
  categories: (i) => `${i}\tCategory ${i}`,
  cust_hist: (i, n) => `${1 + (i % n)}\t${i}\t${1 + (i % 997)}`,
  customers: (i) =>
    [
      i,
      `FIRST${i}`,
      `LAST${i}`,
      `${i} Dell Way`,
      i % 7 === 0 ? escapedAddress.text : "\\N",
      "CITY",
      i % 2 ? "NY" : "\\N",
      i % 2 ? 10000 + (i % 89999) : "\\N",
      i % 2 ? "US" : "Japan",
      i % 2 ? 1 : 2,
      `u${i}@dell.com`,
      "5550100",
      1 + (i % 5),
      "4111111111111111",
      "2012/09",
      `user${i}`,
      "password",
      18 + (i % 70),
      20000 * (1 + (i % 5)),
      i % 2 ? "M" : "F",
    ].join("\t"),
  inventory: (i) => `${i}\t${i % 500}\t${i % 300}`,
  orderlines: (i) => `${i}\t${i}\t${1 + (i % 997)}\t${1 + (i % 5)}\t2004-01-01`,
  orders: (i, n) => {
    const cents = 100 + ((i * 7919) % 40000);
    const tax = Math.round(cents * 0.0825);
    const money = (c: number) => `${Math.floor(c / 100)}.${String(c % 100).padStart(2, "0")}`;
    return `${i}\t2004-${String(1 + (i % 12)).padStart(2, "0")}-15\t${1 + (i % n)}\t${money(cents)}\t${money(tax)}\t${money(cents + tax)}`;
  },
  products: (i) => `${i}\t${1 + (i % 16)}\tTITLE ${i}\tACTOR ${i}\t${(9.99 + (i % 20)).toFixed(2)}\t${i % 2}\t${i}`,
  reorder: () => "",
};

// A second function, as in the real dump: its body has semicolons and a line that looks like a COPY.
const extraFunction = `
CREATE FUNCTION login(character varying, character varying) RETURNS integer
    AS $$
  DECLARE
    note text := 'COPY customers (customerid) FROM stdin;';
  BEGIN
    PERFORM 1; RETURN 0;
  END;
$$
    LANGUAGE plpgsql;
`;

/** Writes the dump to `path` with `rows` rows per table (categories keep 16, reorder stays empty). */
export async function writeFullDump(path: string, rows: number): Promise<void> {
  const fixture = await readFile(fixturePath, "utf8");
  const out = createWriteStream(path);
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, "drain");
  };
  const lines = fixture.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    await write(`${line}\n`);
    if (line.startsWith("SET default_tablespace")) await write(extraFunction);
    const copy = /^COPY (\w+) /.exec(line);
    if (!copy) continue;
    const table = copy[1] as string;
    while (lines[i + 1] !== "\\.") i++; // drop the fixture's rows
    const count = table === "categories" ? 16 : table === "reorder" ? 0 : rows;
    const row = rowsFor[table] ?? (() => "");
    let chunk = "";
    for (let r = 1; r <= count; r++) {
      chunk += `${row(r, rows)}\n`;
      if (chunk.length > 1 << 16) {
        await write(chunk);
        chunk = "";
      }
    }
    await write(chunk);
  }
  out.end();
  await once(out, "finish");
}
