// A field left out is said to be required, in REST's {"detail"} and in tRPC's
// data.fields alike; a field given with a wrong value keeps the message that
// says what is wrong with the value. Against a real server.
import { TRPCClientError } from "@trpc/client";
import { describe, expect, it } from "vitest";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";

const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url }));
const orderCount = async () => (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders`)[0]?.n;

const addRest = async (body: object) => {
  const res = await fetch(`${server.url}/add/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { detail: string } };
};

/** orders.add through the typed client; what it refused with. */
const addTrpc = async (input: object) => {
  const error = await server.client.orders.add.mutate(input as never).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof TRPCClientError)) throw new Error(`expected a refusal, got ${String(error)}`);
  return { message: error.message, data: error.data as { code: string; fields?: Record<string, string[]> } };
};

describe("POST /add/ with a field left out", () => {
  it.each([
    [{ customerid: 9999, netamount: 23 }, "tax: is required"],
    [{ customerid: 9999, tax: 2 }, "netamount: is required"],
    [{ netamount: 23, tax: 2 }, "customerid: is required"],
    [{}, "customerid: is required; netamount: is required; tax: is required"],
  ])("%j → 422 %j, nothing stored", async (body, detail) => {
    const before = await orderCount();
    expect(await addRest(body)).toEqual({ status: 422, body: { detail } });
    expect(await orderCount()).toBe(before);
  });

  it.each([
    [{ customerid: 9999, netamount: 23, tax: -1 }, "tax: must be a non-negative amount with at most two decimals"],
    [{ customerid: 9999, netamount: 23, tax: null }, "tax: must be a non-negative amount with at most two decimals"],
    [{ customerid: "x", netamount: 23, tax: 1 }, "customerid: must be a positive whole number"],
  ])("a wrong value keeps its own message: %j → %j", async (body, detail) => {
    expect(await addRest(body)).toEqual({ status: 422, body: { detail } });
  });
});

describe("orders.add with a field left out", () => {
  it.each([
    [{ customerId: 9999, netAmount: "23.00" }, { tax: ["is required"] }],
    [{ customerId: 9999, tax: "2.00" }, { netAmount: ["is required"] }],
    [{ netAmount: "23.00", tax: "2.00" }, { customerId: ["is required"] }],
  ])("%j → BAD_REQUEST with data.fields %j", async (input, fields) => {
    const before = await orderCount();
    const { message, data } = await addTrpc(input);
    expect(data.code).toBe("BAD_REQUEST");
    expect(data.fields).toEqual(fields);
    expect(message).toBe(`${Object.keys(fields)[0]}: is required`);
    expect(await orderCount()).toBe(before);
  });

  it("keeps a wrong value's own message", async () => {
    const { data } = await addTrpc({ customerId: 9999, netAmount: "23.00", tax: null });
    expect(data.fields).toEqual({ tax: ["must be a non-negative amount with at most two decimals"] });
  });

  it("says so of a query's required input too", async () => {
    const error = await server.client.customers.summary.query({} as never).catch((e: unknown) => e);
    expect((error as TRPCClientError<never>).data).toMatchObject({ fields: { customerId: ["is required"] } });
  });
});
