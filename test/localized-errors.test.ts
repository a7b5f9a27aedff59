// A PostgreSQL that speaks German (lc_messages = de_DE.UTF-8) is answered the
// same as one that speaks English: the server decides from SQLSTATEs and the
// never-localized severity, never from words PostgreSQL translates. An unknown
// customer is 404, not a 503 for an ERROR it failed to recognise as "FEHLER",
// and serialization failures are still retried.
import postgres from "postgres";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { provesNotCommitted } from "../server/database-errors.ts";
import { startTestApp, type TestApp } from "./support/app.ts";
import { createTestDatabase, type TestDatabase } from "./support/database.ts";
import { installFlakyOrders } from "./support/flaky-orders.ts";
import { germanMessages, howToAddCatalog, howToAddGerman } from "./support/german.ts";

let db: TestDatabase & { drop(): Promise<void> };
let server: TestApp | undefined;
/** Why German sessions can't be had here; each test then fails with it (a failing beforeAll only skips them). */
let noGerman: Error | undefined;

beforeAll(async () => {
  db = await createTestDatabase("seeded");
  // Every session on this database, the app's included, gets its messages in German.
  try {
    await db.sql.unsafe(`ALTER DATABASE "${db.name}" SET lc_messages = '${germanMessages}'`);
  } catch (error) {
    // 22023 invalid_parameter_value: PostgreSQL could not setlocale() to it.
    noGerman = new Error(`${howToAddGerman} (PostgreSQL said: ${(error as Error).message})`);
    return;
  }
  server = await startTestApp({ DATABASE_URL: db.url, DATABASE_TIMEOUT_SECONDS: "2" });
});

afterAll(async () => {
  await server?.close();
  await db?.drop();
});

const post = (body: object, key?: string) =>
  fetch(`${server?.url}/add/`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key === undefined ? {} : { "idempotency-key": key }) },
    body: JSON.stringify(body),
  });

const rowsWithNet = async (net: string) =>
  (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM orders WHERE netamount = ${net}::numeric`)[0]?.n;

describe("with PostgreSQL's messages in German", () => {
  beforeEach(() => {
    if (noGerman) throw noGerman;
  });

  it("the database's sessions really get German messages and a localized severity", async () => {
    // A fresh session, as the app's are: the database's setting applies to it.
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const error = await sql`SELECT 1/0`.then(
        () => undefined,
        (e: unknown) => e as postgres.PostgresError & { severity_local?: string },
      );
      expect(error?.code).toBe("22012");
      // Without the catalog (or the locale) PostgreSQL falls back to English, and the test would prove nothing.
      expect(error?.message, howToAddCatalog).toBe("Division durch Null");
      expect([error?.severity_local, error?.severity]).toEqual(["FEHLER", "ERROR"]);
    } finally {
      await sql.end();
    }
  });

  it("an order for an unknown customer is 404 over REST", async () => {
    const res = await post({ customerid: 987654, netamount: 1, tax: 1 }, "german-unknown-rest");
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ detail: "Customer 987654 does not exist." });
  });

  it("an order for an unknown customer is NOT_FOUND over tRPC", async () => {
    const failed = await server?.client.orders.add
      .mutate({ customerId: 987655, netAmount: "1.00", tax: 1, idempotencyKey: "german-unknown-trpc" })
      .then(
        () => undefined,
        (e: unknown) => e as { data?: { code?: string } },
      );
    expect(failed?.data?.code).toBe("NOT_FOUND");
  });

  describe("serialization failures", () => {
    beforeAll(() => installFlakyOrders(db.sql));

    it("are retried inside the server: two failed attempts, then one order", async () => {
      const res = await post({ customerid: 32, netamount: "777.77", tax: 1 });
      expect(res.status).toBe(200);
      expect(await rowsWithNet("777.77")).toBe(1);
      // Both failed attempts happened (the sequence counted them and the third one).
      expect((await db.sql<{ n: string }[]>`SELECT last_value::text AS n FROM flaky_attempts`)[0]?.n).toBe("3");
    });
  });
});

describe("provesNotCommitted, on the fields postgres.js gives", () => {
  it("trusts the never-localized severity over the localized one", () => {
    expect(provesNotCommitted({ code: "57014", severity: "ERROR", severity_local: "FEHLER" })).toBe(true);
    // A FATAL (here: terminated while the commit waited) proves nothing, in any language.
    expect(provesNotCommitted({ code: "57P01", severity: "FATAL", severity_local: "FATAL" })).toBe(false);
  });

  it("falls back to the localized severity only when the server sent no 'V' field", () => {
    expect(provesNotCommitted({ code: "57014", severity_local: "ERROR" })).toBe(true);
    expect(provesNotCommitted({ code: "57014", severity_local: "FEHLER" })).toBe(false);
  });

  it("takes SQLSTATEs only ever raised as ERROR as proof, whatever the severity says", () => {
    for (const code of ["23503", "40001", "40P01", "22012", "42P01", "P0001"]) {
      expect(provesNotCommitted({ code, severity_local: "FEHLER" }), code).toBe(true);
    }
    // statement_completion_unknown is in the same class as serialization failures, and proves nothing.
    expect(provesNotCommitted({ code: "40003", severity_local: "FEHLER" })).toBe(false);
  });
});
