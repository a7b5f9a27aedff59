// Idempotent writes: an Idempotency-Key (REST header, or orders.add's
// idempotencyKey) stores its order once; the typed client sends a fresh key
// per call and retries a lost answer with it, so "try again" never duplicates.
import { type AddressInfo, createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { createClient } from "../client/index.ts";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { useProxy } from "./support/tcp-proxy.ts";

const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url }));
const proxy = useProxy(() => db.url, 5432);
const proxied = useApp(() => ({ DATABASE_URL: proxy.url(db.url), DATABASE_TIMEOUT_SECONDS: "2" }));

/** The orders this file added for `customer` (the seeded ones are ids 1 to 12,000). */
const storedOrders = async (customer: number) =>
  db.sql<{ orderid: number; net: string }[]>`
    SELECT orderid, netamount::text AS net FROM orders
    WHERE customerid = ${customer} AND orderid > 12000 ORDER BY orderid`;

const postAdd = (body: object, key?: string) =>
  fetch(`${server.url}/add/`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key === undefined ? {} : { "idempotency-key": key }) },
    body: JSON.stringify(body),
  });

describe("Idempotency-Key on POST /add/", () => {
  it("stores the order once for the same key and body, and answers 409 for another body", async () => {
    const body = { customerid: 21, netamount: 10, tax: 1, orderdate: "2024-05-01" };
    const first = await postAdd(body, "rest-key-1");
    const again = await postAdd(body, "rest-key-1");
    expect([first.status, again.status]).toEqual([200, 200]);
    expect(await again.json()).toEqual({ updated: { customer: 21 } });

    const other = await postAdd({ ...body, netamount: 11 }, "rest-key-1");
    expect(other.status).toBe(409);
    expect(await other.json()).toEqual({ detail: expect.stringMatching(/already used for a different order/) });

    expect(await storedOrders(21)).toEqual([{ orderid: expect.any(Number), net: "10.00" }]);
  });

  it("refuses a key that is too long or not printable, with 422 and nothing stored", async () => {
    for (const key of ["k".repeat(129), "tab\there"]) {
      const res = await postAdd({ customerid: 22, netamount: 1, tax: 1 }, key);
      expect(res.status).toBe(422);
      expect(await res.json()).toEqual({ detail: expect.stringMatching(/^idempotency-key: /) });
    }
    expect(await storedOrders(22)).toEqual([]);
  });
});

describe("orders.add's idempotencyKey", () => {
  it("returns the first order for a repeat and CONFLICT for another order under the same key", async () => {
    const input = { customerId: 23, netAmount: "5.00", tax: "0.50", orderDate: "2024-06-01", idempotencyKey: "trpc-1" };
    const first = await server.client.orders.add.mutate(input);
    expect(await server.client.orders.add.mutate(input)).toEqual(first);
    const conflict = await server.client.orders.add.mutate({ ...input, tax: "0.60" }).catch((e: unknown) => e);
    expect(conflict).toMatchObject({ data: { code: "CONFLICT", httpStatus: 409 } });
    expect(await storedOrders(23)).toEqual([{ orderid: first.orderId, net: "5.00" }]);
  });

  it("resolves concurrent requests with one key to one order", async () => {
    const input = { customerId: 24, netAmount: "7.00", tax: "0.70", idempotencyKey: "concurrent-1" };
    const results = await Promise.all(Array.from({ length: 12 }, () => server.client.orders.add.mutate(input)));
    const [first] = results;
    expect(results).toEqual(results.map(() => first));
    expect(await storedOrders(24)).toEqual([{ orderid: first?.orderId, net: "7.00" }]);
  });

  it("gives each call without a key its own order (the client adds a fresh key per call)", async () => {
    const input = { customerId: 25, netAmount: "3.00", tax: "0.30", orderDate: "2024-07-01" };
    const [a, b] = [await server.client.orders.add.mutate(input), await server.client.orders.add.mutate(input)];
    expect(a.orderId).not.toBe(b.orderId);
    expect((await storedOrders(25)).length).toBe(2);
  });
});

describe("the typed client's retries", () => {
  it("retry an add whose answer was lost after it committed, and the order is stored once", async () => {
    const client = createClient({ url: proxied.url, retry: { attempts: 3, baseDelayMs: 50 } });
    // PostgreSQL receives and commits the first attempt, but its answer never reaches the service: 503.
    const held = proxy.holdRepliesAfter("add_order");
    try {
      const order = await client.orders.add.mutate({ customerId: 26, netAmount: "42.00", tax: "4.20" });
      await held;
      expect(await storedOrders(26)).toEqual([{ orderid: order.orderId, net: "42.00" }]);
    } finally {
      proxy.restore();
    }
    const metrics = await (await fetch(`${proxied.url}/metrics`)).text();
    expect(metrics).toMatch(/trpc_procedure_duration_seconds_count\{[^}]*outcome="SERVICE_UNAVAILABLE"[^}]*\} 1/);
    expect(await storedOrders(26)).toHaveLength(1);
  });

  it("retry a connection that fails, a bounded number of times, then give up with the error", async () => {
    // A real listener that hangs up on every connection, as a crashing server would.
    let connections = 0;
    const hangUp = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => hangUp.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = hangUp.address() as AddressInfo;
      const client = createClient({ url: `http://127.0.0.1:${port}`, retry: { attempts: 3, baseDelayMs: 10 } });
      const error = await client.orders.add.mutate({ customerId: 27, netAmount: 1, tax: 1 }).catch((e: unknown) => e);
      expect(error).toMatchObject({ message: expect.stringMatching(/fetch failed/) });
      expect(connections).toBe(3);
    } finally {
      await new Promise((resolve) => hangUp.close(resolve));
    }
  });
});
