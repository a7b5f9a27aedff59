// The CLI lines of the contract, exactly as typed, against a real server.
import { describe, expect, it } from "vitest";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { lastJson, run } from "./support/run.ts";
import { freePort } from "./support/server-process.ts";

const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url }));
/** Runs `line` (`npm …` or `npx …`) as typed, split at spaces. */
const npm = (line: string, env: Record<string, string> = {}) => {
  const [command = "npm", ...args] = line.split(" ");
  return run(command, args, { SERVER_URL: server.url, ...env });
};
const customerCount = async (id: number) =>
  (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders WHERE customerid = ${id}`)[0]?.n;

/** Runs `line`, which must print `order` (for customer 9999) and add exactly one order. */
const expectAdds = async (line: string, order: Record<string, string>) => {
  const before = await customerCount(9999);
  const result = await npm(line);
  expect(result.code, result.stderr).toBe(0);
  expect(lastJson(result.stdout)).toMatchObject({ customerId: 9999, ...order });
  expect(await customerCount(9999)).toBe((before ?? 0) + 1);
  return result;
};

describe("npm run client", () => {
  // The documented forms pass every word on as typed, so npm has nothing to warn about;
  // the card's line works too (npm warns that it keeps --customer, the CLI puts it back).
  it.each([
    ["npm run client -- count --customer 9999", "documented"],
    ["npx dellstore-orders count --customer 9999", "documented"],
    ["npm run client count --customer 9999", "card"],
  ])("`%s` prints that customer's count as JSON", async (line, form) => {
    const result = await npm(line);
    expect(result.code, result.stderr).toBe(0);
    expect(lastJson(result.stdout)).toEqual({ count: await customerCount(9999) });
    if (form === "documented") expect(result.stderr).not.toMatch(/warn/i);
  });

  it("`npm run client count` prints the total", async () => {
    const result = await npm("npm run client count");
    expect(lastJson(result.stdout)).toEqual({ count: 12_000 });
  });

  it.each([
    ["npm run client -- add --customer 9999 --net 23.00 --tax 2.00 --date 2023-03-10", "2023-03-10"],
    ["npm run client -- add --customer 9999 --net 23.00 --tax 2.00", undefined],
    ["npx dellstore-orders add --customer 9999 --net 23.00 --tax 2.00", undefined],
  ])("`%s` adds the order and prints it, without a warning", async (line, date) => {
    const result = await expectAdds(line, {
      netAmount: "23.00",
      tax: "2.00",
      totalAmount: "25.00",
      ...(date ? { orderDate: date } : {}),
    });
    expect(result.stderr).not.toMatch(/warn/i);
  });

  // Without `--`, npm keeps every `--flag` for itself: its environment has the value of
  // a `--flag=value`, and for a `--flag value` only that the value was passed on as a
  // word of its own. With at most one such word the line as typed is certain
  // (client/npm-run-args.ts). Net and tax differ, so a swap would show.
  it.each([
    "--customer 9999 --net=23.10 --tax=2.20",
    "--tax=2.20 --net 23.10 --customer=9999",
    "--net=23.10 --customer=9999 --tax 2.20",
    "--date 2023-03-11 --tax=2.20 --net=23.10 --customer=9999",
    "--customer=9999 --date=2023-03-11 --net=23.10 --tax 2.20",
  ])("`npm run client add %s` writes exactly what was typed", async (flags) => {
    const date: Record<string, string> = flags.includes("--date") ? { orderDate: "2023-03-11" } : {};
    await expectAdds(`npm run client add ${flags}`, { netAmount: "23.10", tax: "2.20", totalAmount: "25.30", ...date });
  });

  // With more, which value was whose is lost (`--tax 2.20 --net 23.10` arrives as `2.20 23.10`):
  // a guess could store another order than the one typed, so nothing is sent.
  it.each([
    ["add --customer 9999 --net 23.10 --tax 2.20", "add --customer <id> --net <amount> --tax <amount>"],
    ["add --tax 2.20 --net 23.10 --customer 9999", "add --customer <id> --net <amount> --tax <amount>"],
    [
      "add --customer 9999 --net 23.10 --tax 2.20 --date 2023-03-11",
      "add --customer <id> --net <amount> --tax <amount> --date <YYYY-MM-DD>",
    ],
    [
      "add --net=23.10 --date 2023-03-11 --customer 9999 --tax=2.20",
      "add --customer <id> --net 23.10 --tax 2.20 --date <YYYY-MM-DD>",
    ],
    ["count --customer -1", "count --customer <id>"],
    ["count --customer 9999 --customer 9998", "count --customer <id>"],
  ])("`npm run client %s` is refused, stores nothing and names the line to type", async (typed, instead) => {
    const before = await customerCount(9999);
    const result = await npm(`npm run client ${typed}`);
    expect(result.code).toBe(2);
    expect(result.stdout).not.toMatch(/^\{/m);
    const lines = result.stderr.trim().split("\n");
    expect(lines.at(-2)).toMatch(/^error: npm kept --.*; nothing was sent\. Put -- after `npm run client` and npm/);
    expect(lines.at(-1)).toBe(`  npm run client -- ${instead}`);
    expect(await customerCount(9999)).toBe(before);
  });

  it("stores exactly what each of several lines started together typed, and nothing for those refused", async () => {
    // Each npm run has its own environment: no line takes another's flags, whenever it began.
    const lines = [
      [
        "npm run client add --customer=9998 --net=3.00 --tax 4.00",
        { customerId: 9998, netAmount: "3.00", tax: "4.00" },
      ],
      [
        "npm run client add --tax=2.00 --net=3.00 --customer 9999",
        { customerId: 9999, netAmount: "3.00", tax: "2.00" },
      ],
      ["npm run client add --customer 9998 --net 5.00 --tax 6.00", undefined],
      ["npm run client add --tax 7.00 --net 8.00 --customer 9999", undefined],
    ] as const;
    const stored = async () =>
      db.sql<{ customerid: number; netamount: string; tax: string }[]>`
        SELECT customerid, netamount, tax FROM orders WHERE customerid IN (9998, 9999) ORDER BY orderid`;
    const before = (await stored()).length;
    // Started in one tick, so all four npm processes begin within the same few milliseconds.
    const results = await Promise.all(lines.map(([line]) => npm(line)));
    for (const [i, [line, order]] of lines.entries()) {
      const result = results[i] as (typeof results)[number];
      expect(result.code, `${line}\n${result.stderr}`).toBe(order ? 0 : 2);
      if (order) expect(lastJson(result.stdout)).toMatchObject(order);
    }
    const added = (await stored()).slice(before);
    expect(added).toEqual(
      expect.arrayContaining(
        lines.flatMap(([, o]) => (o ? [{ customerid: o.customerId, netamount: o.netAmount, tax: o.tax }] : [])),
      ),
    );
    expect(added).toHaveLength(2);
  });

  it("`npm run client count --customer=9999` counts that customer's orders", async () => {
    const result = await npm("npm run client count --customer=9999");
    expect(result.code, result.stderr).toBe(0);
    expect(lastJson(result.stdout)).toEqual({ count: await customerCount(9999) });
  });

  it.each([["npm run client -- --help"], ["npm run client -- add --help"]])("`%s` prints the usage", async (line) => {
    const result = await npm(line);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/Usage: dellstore-orders/);
    if (line.includes("add"))
      expect(result.stdout).toMatch(/--customer <id>[\s\S]*--net <amount>[\s\S]*--tax <amount>/);
  });

  it.each([
    ["--customer 12x --net 1 --tax 1", /--customer <id>.* is invalid\. must be a positive whole number/],
    ["--customer=-1 --net 1 --tax 1", /--customer <id>.* is invalid\. must be positive/],
    ["--customer 9999 --net 1.234 --tax 1", /--net <amount>.* is invalid\. must be a non-negative amount/],
    ["--customer 9999 --net 1 --tax 1 --date 2023-02-30", /--date <YYYY-MM-DD>.* is invalid\. is not a calendar date/],
    ["--customer 9999 --net 1", /required option '--tax <amount>' not specified/],
    ["--customer 9999 --net 9999999999.99 --tax 0.01", /^error: --net \+ --tax must not exceed 9999999999\.99$/m],
  ])("`add %s` is refused before any request", async (flags, message) => {
    // No server at SERVER_URL: a request would say "cannot reach the server".
    const closed = `http://127.0.0.1:${await freePort()}`;
    const result = await npm(`npm run client -- add ${flags}`, { SERVER_URL: closed });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toContain("cannot reach");
  });

  it("prints the server's error in one line and exits non-zero", async () => {
    const result = await npm("npm run client -- add --customer 99999 --net 1 --tax 1");
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n").at(-1)).toBe("error: Customer 99999 does not exist.");
  });

  it.each([
    [(url: string) => url.replace(/^http:\/\//, ""), "http://"],
    [(url: string) => `localhost:${new URL(url).port}`, "http://"],
    [(url: string) => url.replace(/^http:/, "ftp:"), "http://127.0.0.1:8000"],
    [() => "http://", "http://127.0.0.1:8000"],
  ])("says what is wrong with a SERVER_URL that isn't an http(s) URL, before any request (%#)", async (wrong, like) => {
    // The server meant is listening (cases 0 and 1 name it without the scheme): the URL is refused before any request.
    const value = wrong(server.url);
    const result = await npm("npm run client count", { SERVER_URL: value });
    expect(result.code).toBe(2);
    const lines = result.stderr
      .trim()
      .split("\n")
      .filter((l) => !l.startsWith("npm "));
    expect(lines).toEqual([
      `error: SERVER_URL must be a URL starting with http:// or https://, like ${like === "http://" ? `http://${value}` : like}; it is "${value}"`,
    ]);
  });

  it("says in one line that the server can't be reached, and exits non-zero", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const result = await npm("npm run client count", { SERVER_URL: closed });
    expect(result.code).toBe(1);
    const lines = result.stderr
      .trim()
      .split("\n")
      .filter((l) => !l.startsWith("npm "));
    expect(lines).toEqual([
      expect.stringMatching(new RegExp(`^error: cannot reach the server at ${closed} \\(ECONNREFUSED\\)`)),
    ]);
  });
});
