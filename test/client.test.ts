// The typed client against a real listening server on a real database.
import { TRPCClientError } from "@trpc/client";
import { describe, expect, it } from "vitest";
import type { RouterInputs } from "../client/index.ts";
import { today } from "../server/inputs.ts";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";

const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url }));

const orderCount = async (customerId?: number) => {
  const [row] = await db.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM orders WHERE ${customerId === undefined ? db.sql`true` : db.sql`customerid = ${customerId}`}`;
  return row?.n;
};

describe("orders.count", () => {
  it("counts all orders", async () => {
    expect(await server.client.orders.count.query()).toEqual({ count: await orderCount() });
    expect(await server.client.orders.count.query({})).toEqual({ count: await orderCount() });
  });

  it("counts one customer's orders, zero for a customer without any", async () => {
    const [busiest] = await db.sql<{ customerid: number; n: number }[]>`
      SELECT customerid, count(*)::int AS n FROM orders GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1`;
    expect(busiest?.n).toBeGreaterThan(1);
    expect(await server.client.orders.count.query({ customerId: busiest?.customerid })).toEqual({ count: busiest?.n });
    const [idle] = await db.sql<{ customerid: number }[]>`
      SELECT customerid FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customerid = c.customerid) LIMIT 1`;
    expect(await server.client.orders.count.query({ customerId: idle?.customerid })).toEqual({ count: 0 });
  });
});

describe("orders.monthly", () => {
  it("reads any year the input allows, the first centuries included", async () => {
    expect(await server.client.orders.monthly.query({ year: 12 })).toEqual([]);
    expect(await server.client.orders.monthly.query({ year: 9999 })).toEqual([]);
    expect(await server.client.orders.monthly.query({ year: 2004 })).toHaveLength(12);
  });
});

describe("orders.add", () => {
  it("creates the order with exact money and returns it", async () => {
    const before = await orderCount(9999);
    const order = await server.client.orders.add.mutate({
      customerId: 9999,
      netAmount: 23.1,
      tax: "2.2",
      orderDate: "2023-03-10",
    });
    expect(order).toEqual({
      orderId: expect.any(Number),
      orderDate: "2023-03-10",
      customerId: 9999,
      netAmount: "23.10",
      tax: "2.20",
      totalAmount: "25.30",
    });
    const [row] =
      await db.sql`SELECT netamount, tax, totalamount, orderdate::text FROM orders WHERE orderid = ${order.orderId}`;
    expect(row).toEqual({ netamount: "23.10", tax: "2.20", totalamount: "25.30", orderdate: "2023-03-10" });
    expect(await server.client.orders.count.query({ customerId: 9999 })).toEqual({ count: (before ?? 0) + 1 });
  });

  it("dates an order today, by the server's clock, when no date is given", async () => {
    // The server runs in this process: one clock, read on both sides of the call in case midnight falls between.
    const before = today();
    const order = await server.client.orders.add.mutate({ customerId: 1, netAmount: 0, tax: 0 });
    expect([before, today()]).toContain(order.orderDate);
    expect(order.totalAmount).toBe("0.00");
  });

  it("accepts the largest amount numeric(12,2) holds", async () => {
    const order = await server.client.orders.add.mutate({ customerId: 1, netAmount: "9999999999.98", tax: "0.01" });
    expect(order.totalAmount).toBe("9999999999.99");
  });

  it("answers NOT_FOUND for a customer that doesn't exist, and writes nothing", async () => {
    const before = await orderCount();
    const error = await server.client.orders.add.mutate({ customerId: 99_999, netAmount: 1, tax: 1 }).catch((e) => e);
    expect(error).toBeInstanceOf(TRPCClientError);
    expect(error.data).toMatchObject({ code: "NOT_FOUND", httpStatus: 404 });
    expect(error.message).toBe("Customer 99999 does not exist.");
    expect(await orderCount()).toBe(before);
  });
});

describe("bad input", () => {
  type Add = RouterInputs["orders"]["add"];
  const valid: Add = { customerId: 1, netAmount: "1.00", tax: "0.08", orderDate: "2023-03-10" };
  // Each case: the input (bent past its type, as a hostile caller would) and the field it must blame.
  const badAdds: [string, unknown, string][] = [
    ["customer id zero", { ...valid, customerId: 0 }, "customerId"],
    ["negative customer id", { ...valid, customerId: -1 }, "customerId"],
    ["fractional customer id", { ...valid, customerId: 1.5 }, "customerId"],
    ["customer id past 32 bits", { ...valid, customerId: 2 ** 31 }, "customerId"],
    ["customer id as a string", { ...valid, customerId: "1" }, "customerId"],
    ["missing customer id", { netAmount: 1, tax: 1 }, "customerId"],
    ["negative amount", { ...valid, netAmount: -1 }, "netAmount"],
    ["three decimals", { ...valid, netAmount: 1.001 }, "netAmount"],
    ["a float artefact", { ...valid, netAmount: 0.1 + 0.2 }, "netAmount"],
    ["exponent notation", { ...valid, tax: "1e3" }, "tax"],
    ["words for money", { ...valid, tax: "ten" }, "tax"],
    ["empty amount", { ...valid, tax: "" }, "tax"],
    ["NaN", { ...valid, netAmount: Number.NaN }, "netAmount"],
    ["Infinity", { ...valid, netAmount: Number.POSITIVE_INFINITY }, "netAmount"],
    ["an amount past numeric(12,2)", { ...valid, netAmount: "10000000000.00" }, "netAmount"],
    ["a total past numeric(12,2)", { ...valid, netAmount: "9999999999.99", tax: "0.01" }, "tax"],
    ["February 30th", { ...valid, orderDate: "2023-02-30" }, "orderDate"],
    ["month 13", { ...valid, orderDate: "2023-13-01" }, "orderDate"],
    ["a short date", { ...valid, orderDate: "2023-3-10" }, "orderDate"],
    ["year zero", { ...valid, orderDate: "0000-01-01" }, "orderDate"],
    ["a date as a number", { ...valid, orderDate: 20230310 }, "orderDate"],
  ];

  it.each(badAdds)(
    "orders.add rejects %s as BAD_REQUEST naming the field, writing nothing",
    async (_, input, field) => {
      const before = await orderCount();
      const error = await server.client.orders.add.mutate(input as Add).catch((e) => e);
      expect(error).toBeInstanceOf(TRPCClientError);
      expect(error.data).toMatchObject({ code: "BAD_REQUEST", httpStatus: 400 });
      expect(Object.keys(error.data.fields)).toContain(field);
      expect(error.message).toContain(`${field}: `);
      expect(await orderCount()).toBe(before);
    },
  );

  it.each([
    ["zero", { customerId: 0 }],
    ["a string", { customerId: "9999" }],
    ["a fraction", { customerId: 1.5 }],
    ["past 32 bits", { customerId: 2 ** 31 }],
  ])("orders.count rejects a customer id that is %s", async (_, input) => {
    const error = await server.client.orders.count.query(input as { customerId: number }).catch((e) => e);
    expect(error.data).toMatchObject({
      code: "BAD_REQUEST",
      httpStatus: 400,
      fields: { customerId: expect.any(Array) },
    });
  });

  it("rejects input that is not an object at all", async () => {
    for (const input of [null, [], "orders", 42]) {
      const error = await server.client.orders.add.mutate(input as unknown as Add).catch((e) => e);
      expect(error.data).toMatchObject({ code: "BAD_REQUEST", httpStatus: 400 });
    }
  });
});
