// Start-up says what is wrong with the database and what to do about it,
// instead of serving 503s or 500s forever; /health tells a database that
// isn't migrated from one that is down.
import { randomBytes } from "node:crypto";
import { type AddressInfo, createServer } from "node:net";
import { describe, expect, inject, it } from "vitest";
import { databaseMisconfiguration } from "../server/database-misconfiguration.ts";
import { startTestApp } from "./support/app.ts";
import { createTestDatabase, useTestDatabase } from "./support/database.ts";
import { startLocalPostgres } from "./support/local-postgres.ts";
import { run } from "./support/run.ts";
import { freePort, shippedServer } from "./support/server-process.ts";
import { databaseUrl } from "./support/urls.ts";

/** `npm start` without npm: the server's output and exit code. */
const start = async (env: Record<string, string>) => {
  const result = await run(shippedServer[0], shippedServer.slice(1), {
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

describe("start-up with settings that waiting won't fix", () => {
  const db = useTestDatabase("empty");
  /** The message of the last line the server logged: the one that says what to fix. */
  const lastLine = (output: string) => (JSON.parse(output.trim().split("\n").at(-1) ?? "{}") as { msg?: string }).msg;

  it("stops on a role the server doesn't know, in one line naming the user in DATABASE_URL", async () => {
    const u = new URL(db.url);
    u.username = `nobody_${randomBytes(4).toString("hex")}`;
    u.password = "s3cret-pw";
    const { code, output } = await start({ DATABASE_URL: u.toString() });
    expect(code).toBe(1);
    expect(lastLine(output)).toMatch(
      new RegExp(
        `start-up failed: PostgreSQL at .* refused the connection \\(role "${u.username}" does not exist\\): check the user in DATABASE_URL`,
      ),
    );
    expect(output).not.toContain("s3cret-pw");
  });

  it("stops on a password PostgreSQL refuses, in one line naming the password in DATABASE_URL", async () => {
    // A server of the test's own that checks passwords (the shared one may trust every local connection).
    const guarded = await startLocalPostgres({ password: "the-right-one" });
    try {
      const u = new URL(guarded.url);
      u.password = "s3cret-pw";
      const { code, output } = await start({ DATABASE_URL: u.toString() });
      expect(code).toBe(1);
      expect(lastLine(output)).toMatch(
        /^start-up failed: PostgreSQL at .* refused the password \(password authentication failed for user "postgres"\): check the password in DATABASE_URL$/,
      );
      expect(output).not.toContain("s3cret-pw");
    } finally {
      await guarded.remove();
    }
  });

  it("stops on a URL without a password when PostgreSQL asks for one, saying that it has none", async () => {
    const guarded = await startLocalPostgres({ password: "the-right-one" });
    try {
      const u = new URL(guarded.url);
      u.password = "";
      const { code, output } = await start({ DATABASE_URL: u.toString(), PGPASSWORD: "" });
      expect(code).toBe(1);
      expect(lastLine(output)).toBe(
        `start-up failed: PostgreSQL at 127.0.0.1:${u.port}/postgres asked for a password, and DATABASE_URL has none ` +
          '(password authentication failed for user "postgres"): put it in the URL (as user:password@host) or in PGPASSWORD',
      );
    } finally {
      await guarded.remove();
    }
  });

  it("stops when DATABASE_URL asks for TLS from a server without it, naming sslmode", async () => {
    // A server of the test's own, made by initdb: TLS off, whatever the shared one is configured with.
    const plain = await startLocalPostgres();
    try {
      const u = new URL(plain.url);
      u.searchParams.set("sslmode", "require");
      const { code, output } = await start({ DATABASE_URL: u.toString() });
      expect(code).toBe(1);
      expect(lastLine(output)).toMatch(
        /start-up failed: PostgreSQL at .* closed the connection when asked for TLS .*check sslmode in DATABASE_URL/,
      );
    } finally {
      await plain.remove();
    }
  });

  it("says in one line, without a stack, that the port is in use", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = taken.address() as AddressInfo;
      const { code, output } = await start({ DATABASE_URL: db.url, PORT: String(port) });
      expect(code).toBe(1);
      expect(lastLine(output)).toContain(
        `start-up failed: 127.0.0.1:${port} is already in use: stop what listens there, or set PORT`,
      );
      expect(output).not.toMatch(/\n\s+at |"stack"/);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it.each([
    [
      { code: "28P01", message: 'password authentication failed for user "app"' },
      /refused the password .*check the password in DATABASE_URL/,
    ],
    [
      new Error("fetch failed", {
        cause: { code: "SELF_SIGNED_CERT_IN_CHAIN", message: "self-signed certificate in certificate chain" },
      }),
      /TLS certificate could not be verified/,
    ],
    [{ code: "ECONNREFUSED", message: "connect ECONNREFUSED" }, undefined],
    [{ code: "57P03", message: "the database system is starting up" }, undefined],
  ])("classifies %j", (error, expected) => {
    const said = databaseMisconfiguration(error, "127.0.0.1:5432/dellstore", "postgres://app:pw@127.0.0.1/dellstore");
    if (expected === undefined) expect(said).toBeUndefined();
    else expect(said).toMatch(expected);
  });

  it.each([
    ["postgres://app:pw@db/shop", {}, /refused the password .*: check the password in DATABASE_URL$/],
    ["postgres://app@db/shop", {}, /asked for a password, and DATABASE_URL has none .*or in PGPASSWORD$/],
    // postgres.js sends PGPASSWORD when the URL has none: that is the one refused.
    ["postgres://app@db/shop", { PGPASSWORD: "pw" }, /refused the password .*: check the password in PGPASSWORD$/],
  ])("tells a wrong password from a missing one: %s %j", (url, env, expected) => {
    const refused = { code: "28P01", message: 'password authentication failed for user "app"' };
    expect(databaseMisconfiguration(refused, "db:5432/shop", url, env)).toMatch(expected);
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
