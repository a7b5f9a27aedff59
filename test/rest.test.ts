// The seed app's curl API, answered by a real listening server exactly as the
// FastAPI app did, through the same procedures.
import { describe, expect, it } from "vitest";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";

const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url }));

const get = (path: string) => fetch(`${server.url}${path}`);
const post = (path: string, body: string, contentType = "application/json") =>
  fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": contentType }, body });
const orderCount = async () => (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders`)[0]?.n;

/** The tutorial's own request body. */
const seedOrder = '{"orderdate":"2023-03-10","customerid":9999,"netamount":23.0,"tax":2.0}';

describe("GET /count", () => {
  it.each(["/count", "/count/"])("%s answers the total as an integer", async (path) => {
    const res = await get(path);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    const text = await res.text();
    expect(text).toBe(`{"count":${await orderCount()}}`);
  });

  it("answers one customer's count for ?customerid=", async () => {
    const [row] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders WHERE customerid = 9999`;
    expect(await (await get("/count?customerid=9999")).json()).toEqual({ count: row?.n });
  });
});

describe("POST /add/", () => {
  it.each(["/add/", "/add"])("%s takes the seed's payload and answers {updated: {customer}}", async (path) => {
    const before = await orderCount();
    const res = await post(path, seedOrder);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"updated":{"customer":9999}}');
    expect(await orderCount()).toBe((before ?? 0) + 1);
    const [order] =
      await db.sql`SELECT orderdate::text, netamount, tax, totalamount FROM orders ORDER BY orderid DESC LIMIT 1`;
    expect(order).toEqual({ orderdate: "2023-03-10", netamount: "23.00", tax: "2.00", totalamount: "25.00" });
  });

  it("shows the new order in the next count", async () => {
    const { count } = (await (await get("/count?customerid=9999")).json()) as { count: number };
    await post("/add/", seedOrder);
    expect(await (await get("/count?customerid=9999")).json()).toEqual({ count: count + 1 });
  });
});

describe("errors, as FastAPI answers them", () => {
  const cases: [string, () => Promise<Response>, number, RegExp][] = [
    ["a customerid that is not a number", () => get("/count?customerid=abc"), 422, /^customerid: /],
    ["customerid zero", () => get("/count?customerid=0"), 422, /^customerid: must be positive/],
    ["a negative customerid", () => get("/count?customerid=-1"), 422, /^customerid: must be positive$/],
    ["a fractional customerid", () => get("/count?customerid=1.5"), 422, /^customerid: must be a whole number$/],
    [
      "a negative customerid in the body, as text",
      () => post("/add/", '{"customerid":"-1","netamount":1,"tax":1}'),
      422,
      /^customerid: must be positive$/,
    ],
    ["a body that is not JSON", () => post("/add/", "{orderdate:"), 422, /not valid JSON/],
    ["a JSON array", () => post("/add/", "[1,2]"), 422, /must be a JSON object/],
    ["a missing customerid", () => post("/add/", '{"netamount":1,"tax":1}'), 422, /^customerid: /],
    [
      "money with three decimals",
      () => post("/add/", '{"customerid":1,"netamount":1.001,"tax":1}'),
      422,
      /^netamount: /,
    ],
    ["negative tax", () => post("/add/", '{"customerid":1,"netamount":1,"tax":-1}'), 422, /^tax: /],
    [
      "February 30th",
      () => post("/add/", '{"orderdate":"2023-02-30","customerid":1,"netamount":1,"tax":1}'),
      422,
      /^orderdate: is not a calendar date/,
    ],
    [
      "an unknown customer",
      () => post("/add/", '{"customerid":99999,"netamount":1,"tax":1}'),
      404,
      /^Customer 99999 does not exist\.$/,
    ],
    ["GET on /add/", () => get("/add/"), 405, /^Method Not Allowed$/],
    ["an unknown route", () => get("/orders"), 404, /^Not Found$/],
  ];

  it.each(cases)("%s → %i with a {detail} body, writing nothing", async (_, request, status, detail) => {
    const before = await orderCount();
    const res = await request();
    expect(res.status).toBe(status);
    const body = (await res.json()) as { detail: string };
    expect(Object.keys(body)).toEqual(["detail"]);
    expect(body.detail).toMatch(detail);
    expect(body.detail).not.toMatch(/postgres:\/\/|password|\n\s+at /);
    expect(await orderCount()).toBe(before);
  });
});

describe("/health", () => {
  it("reports the database up, and the in-process cache when there is no VALKEY_URL", async () => {
    await expect.poll(async () => (await get("/health")).json()).toMatchObject({ changes: "up" });
    const res = await get("/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok", database: "up", cache: "memory", changes: "up" });
    const warnings = server.logs.filter((l) => l.level === 40).map((l) => l.msg);
    expect(warnings).toContainEqual(
      expect.stringMatching(/^no VALKEY_URL: caching in this process's memory, which other instances don't share/),
    );
    expect(warnings).toContainEqual(
      expect.stringMatching(/^no API_TOKEN: anyone who can reach this server can add orders/),
    );
  });
});
