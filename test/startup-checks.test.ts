// Start-up says what is wrong with the database and what to do about it,
// instead of serving 503s or 500s forever; /health tells a database that
// isn't migrated from one that is down.
import { randomBytes } from "node:crypto";
import { describe, expect, inject, it } from "vitest";
import { startTestApp } from "./support/app.ts";
import { createTestDatabase, useTestDatabase } from "./support/database.ts";
import { run } from "./support/run.ts";
import { freePort } from "./support/server-process.ts";
import { databaseUrl } from "./support/urls.ts";

/** `npm start` without the build step: the server's output and exit code. */
const start = async (env: Record<string, string>) => {
  const result = await run("node", ["--import", "tsx", "server/main.ts"], {
    PORT: String(await freePort()),
    HOST: "127.0.0.1",
    ...env,
  });
  return { code: result.code, output: result.stdout + result.stderr };
};

/** The same URL with a password in it, which no message may repeat. */
const withPassword = (url: string) => {
  const u = new URL(url);
  u.password = "s3cret-pw";
  return u.toString();
};

describe("start-up", () => {
  it("stops when the database doesn't exist, with the createdb line for it", async () => {
    const name = `missing_${randomBytes(4).toString("hex")}`;
    const url = databaseUrl(inject("postgresUrl"), name);
    const { hostname, port, username } = new URL(url);
    const { code, output } = await start({ DATABASE_URL: withPassword(url) });
    expect(code).toBe(1);
    expect(output).toContain(`createdb -h ${hostname} -p ${port} -U ${username} ${name}`);
    expect(output).toContain("npm run db:migrate");
    expect(output).not.toContain("s3cret-pw");
  });

  it.each([
    ["has no tables", "blank"],
    ["lacks the newest migration", "pending"],
  ] as const)("stops when the database %s, naming npm run db:migrate", async (_, state) => {
    const db = await createTestDatabase(state === "blank" ? "blank" : "empty");
    try {
      if (state === "pending") {
        await db.sql`DELETE FROM drizzle.__drizzle_migrations
          WHERE created_at = (SELECT max(created_at) FROM drizzle.__drizzle_migrations)`;
      }
      const { code, output } = await start({ DATABASE_URL: db.url });
      expect(code).toBe(1);
      expect(output).toMatch(/is not migrated: apply the migrations with `npm run db:migrate`/);
    } finally {
      await db.drop();
    }
  });
});

describe("/health", () => {
  const db = useTestDatabase("empty");

  it('answers 503 "database":"not migrated" when migrations go missing after start-up', async () => {
    const server = await startTestApp({ DATABASE_URL: db.url });
    try {
      const healthy = await fetch(`${server.url}/health`);
      expect([healthy.status, await healthy.json()]).toEqual([200, expect.objectContaining({ database: "up" })]);
      // As after deploying a build with a new migration, before running it.
      await db.sql`DELETE FROM drizzle.__drizzle_migrations
        WHERE created_at = (SELECT max(created_at) FROM drizzle.__drizzle_migrations)`;
      const res = await fetch(`${server.url}/health`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: "unavailable", database: "not migrated" });
    } finally {
      await server.close();
    }
  });
});
