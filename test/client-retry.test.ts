// Unit tests of the client's retry policy (pure logic): which answers are retried,
// and that every retry of orders.add resends the same idempotency key. The link
// at the end of the chain stands in for the server; test/idempotency.test.ts
// retries against a real one through a proxy that cuts the connection.
import { createTRPCClient, TRPCClientError, type TRPCLink } from "@trpc/client";
import { observable } from "@trpc/server/observable";
import { describe, expect, it } from "vitest";
import type { AppRouter, ErrorShape } from "../client/api.ts";
import { idempotencyKeyLink, isTransient, safeRetryLink } from "../client/retry.ts";

type Code = ErrorShape["data"]["code"];
const status: Partial<Record<Code, number>> = {
  SERVICE_UNAVAILABLE: 503,
  GATEWAY_TIMEOUT: 504,
  BAD_REQUEST: 400,
  CONFLICT: 409,
  INTERNAL_SERVER_ERROR: 500,
};

const answered = (code: Code) =>
  TRPCClientError.from<AppRouter>({
    error: { code: -32000, message: code, data: { code, httpStatus: status[code] ?? 500 } },
  });
const unanswered = () => TRPCClientError.from<AppRouter>(new TypeError("fetch failed"));

const order = {
  orderId: 1,
  orderDate: "2023-03-10",
  customerId: 1,
  netAmount: "1.00",
  tax: "1.00",
  totalAmount: "2.00",
};

/** A stand-in server that fails with `failures` in turn, then answers; it records each input it was sent. */
function scripted(failures: (() => TRPCClientError<AppRouter>)[]) {
  const sent: unknown[] = [];
  const link: TRPCLink<AppRouter> =
    () =>
    ({ op }) =>
      observable((observer) => {
        const failure = failures[sent.length];
        sent.push(op.input);
        if (failure) observer.error(failure());
        else {
          observer.next({ result: { type: "data", data: op.type === "mutation" ? order : { count: 1 } } });
          observer.complete();
        }
      });
  const client = createTRPCClient<AppRouter>({
    links: [idempotencyKeyLink(), safeRetryLink({ attempts: 4, baseDelayMs: 0 }), link],
  });
  return { client, sent };
}

describe("isTransient", () => {
  it.each([
    ["503 SERVICE_UNAVAILABLE", answered("SERVICE_UNAVAILABLE"), true],
    ["504 GATEWAY_TIMEOUT", answered("GATEWAY_TIMEOUT"), true],
    ["a lost connection", unanswered(), true],
    ["400 BAD_REQUEST", answered("BAD_REQUEST"), false],
    ["409 CONFLICT", answered("CONFLICT"), false],
    ["500 INTERNAL_SERVER_ERROR", answered("INTERNAL_SERVER_ERROR"), false],
    ["a body that is not tRPC's JSON", TRPCClientError.from<AppRouter>(new SyntaxError("Unexpected token <")), false],
  ])("%s → %s", (_, error, expected) => {
    expect(isTransient(error)).toBe(expected);
  });
});

describe("the retry link", () => {
  it("retries orders.add after 504, 503 and a lost connection, resending one idempotency key", async () => {
    const { client, sent } = scripted([
      () => answered("GATEWAY_TIMEOUT"),
      () => answered("SERVICE_UNAVAILABLE"),
      unanswered,
    ]);
    expect(await client.orders.add.mutate({ customerId: 1, netAmount: 1, tax: 1 })).toEqual(order);
    expect(sent).toHaveLength(4);
    const keys = new Set(sent.map((input) => (input as { idempotencyKey?: string }).idempotencyKey));
    expect(keys.size).toBe(1);
    expect([...keys][0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("keeps the caller's own idempotency key", async () => {
    const { client, sent } = scripted([() => answered("GATEWAY_TIMEOUT")]);
    await client.orders.add.mutate({ customerId: 1, netAmount: 1, tax: 1, idempotencyKey: "mine" });
    expect(sent).toEqual([
      expect.objectContaining({ idempotencyKey: "mine" }),
      expect.objectContaining({ idempotencyKey: "mine" }),
    ]);
  });

  it("gives up after the attempts allowed, with the last error", async () => {
    const { client, sent } = scripted(Array.from({ length: 5 }, () => () => answered("GATEWAY_TIMEOUT")));
    await expect(client.orders.count.query()).rejects.toMatchObject({ data: { code: "GATEWAY_TIMEOUT" } });
    expect(sent).toHaveLength(4);
  });

  it("does not retry an error that another try would repeat", async () => {
    const { client, sent } = scripted([() => answered("CONFLICT")]);
    await expect(client.orders.add.mutate({ customerId: 1, netAmount: 1, tax: 1 })).rejects.toMatchObject({
      data: { code: "CONFLICT" },
    });
    expect(sent).toHaveLength(1);
  });
});
