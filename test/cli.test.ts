// The CLI lines of the contract, exactly as typed, against a real server.
import { describe, expect, it } from "vitest";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { lastJson, run } from "./support/run.ts";
import { freePort } from "./support/server-process.ts";

const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url }));
const npm = (line: string, env: Record<string, string> = {}) =>
  run("npm", line.split(" ").slice(1), { SERVER_URL: server.url, ...env });
const customerCount = async (id: number) =>
  (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders WHERE customerid = ${id}`)[0]?.n;

describe("npm run client", () => {
  it.each([["npm run client count --customer 9999"], ["npm run client -- count --customer 9999"]])(
    "`%s` prints that customer's count as JSON",
    async (line) => {
      const result = await npm(line);
      expect(result.code, result.stderr).toBe(0);
      expect(lastJson(result.stdout)).toEqual({ count: await customerCount(9999) });
    },
  );

  it("`npm run client count` prints the total", async () => {
    const result = await npm("npm run client count");
    expect(lastJson(result.stdout)).toEqual({ count: 12_000 });
  });

  it.each([
    ["npm run client add --customer 9999 --net 23.00 --tax 2.00 --date 2023-03-10", "2023-03-10"],
    ["npm run client -- add --customer 9999 --net 23.00 --tax 2.00 --date 2023-03-10", "2023-03-10"],
    ["npm run client add --customer 9999 --net 23.00 --tax 2.00", undefined],
  ])("`%s` adds the order and prints it", async (line, date) => {
    const before = await customerCount(9999);
    const result = await npm(line);
    expect(result.code, result.stderr).toBe(0);
    expect(lastJson(result.stdout)).toMatchObject({
      customerId: 9999,
      netAmount: "23.00",
      tax: "2.00",
      totalAmount: "25.00",
      ...(date ? { orderDate: date } : {}),
    });
    expect(await customerCount(9999)).toBe((before ?? 0) + 1);
  });

  it("prints the server's error in one line and exits non-zero", async () => {
    const result = await npm("npm run client -- add --customer 99999 --net 1 --tax 1");
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n").at(-1)).toBe("error: Customer 99999 does not exist.");
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
