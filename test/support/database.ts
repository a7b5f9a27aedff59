// A database of the test's own, cloned from a template the global setup made,
// dropped when the file is done.
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { inject } from "vitest";
import { connectPostgres, type DatabaseHandle } from "../../db/client.ts";
import { useFixture } from "./fixture.ts";
import { databaseUrl } from "./urls.ts";

export type Template = "empty" | "seeded" | "blank";

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** A pool on it, for arranging and checking data behind the service's back. */
  readonly handle: DatabaseHandle;
  readonly sql: postgres.Sql;
}

/** Creates a database: "blank" (nothing), "empty" (migrated) or "seeded" (migrated, 20,000 customers, 12,000 orders). */
export async function createTestDatabase(template: Template): Promise<TestDatabase & { drop(): Promise<void> }> {
  const admin = inject("postgresUrl");
  const name = `${inject("runPrefix")}_${randomBytes(4).toString("hex")}`;
  const sql = postgres(admin, { max: 1, onnotice: () => {} });
  try {
    const from = template === "blank" ? "" : ` TEMPLATE "${inject("runPrefix")}_${template}"`;
    await sql.unsafe(`CREATE DATABASE "${name}"${from}`);
  } finally {
    await sql.end();
  }
  const url = databaseUrl(admin, name);
  const handle = connectPostgres(url, { max: 4 });
  const pool = handle.sql as postgres.Sql;
  return {
    name,
    url,
    handle,
    sql: pool,
    async drop() {
      await handle.close();
      const admin = postgres(inject("postgresUrl"), { max: 1, onnotice: () => {} });
      try {
        await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    },
  };
}

/** A test database for the whole file: ready in the tests, dropped after them. */
export function useTestDatabase(template: Template): TestDatabase {
  return useFixture(
    () => createTestDatabase(template),
    (database) => database.drop(),
  );
}
