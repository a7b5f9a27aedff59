// Managed-service style connections, for real: a throwaway CA, a TLS-only
// PostgreSQL cluster and a TLS-only Valkey-protocol server on free ports.
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "./support/run.ts";
import { startServerProcess } from "./support/server-process.ts";
import { type Certificates, makeCertificates, startTlsPostgres, startTlsRedis, type TlsServer } from "./support/tls.ts";

let certs: Certificates;
let pg: TlsServer;
let redis: TlsServer;
beforeAll(async () => {
  certs = makeCertificates();
  [pg, redis] = await Promise.all([startTlsPostgres(certs), startTlsRedis(certs)]);
});
afterAll(async () => {
  await Promise.all([pg?.stop(), redis?.stop()]);
});

/** The built server on both TLS servers, trusting `valkeyCa` for Valkey. */
const startOverTls = (valkeyCa: string) =>
  startServerProcess(
    {
      DATABASE_URL: databaseUrl("verify-full"),
      PGSSLROOTCERT: certs.ca,
      VALKEY_URL: `rediss://127.0.0.1:${redis.port}`,
      NODE_EXTRA_CA_CERTS: valkeyCa,
    },
    ["node", "dist/server/main.js"],
  );

const databaseUrl = (mode: string) => `postgres://postgres:not-a-secret@127.0.0.1:${pg.port}/postgres?sslmode=${mode}`;

describe("PostgreSQL over TLS", () => {
  it("migrates and seeds with sslmode=verify-full and the CA in PGSSLROOTCERT", async () => {
    const env = { DATABASE_URL: databaseUrl("verify-full"), PGSSLROOTCERT: certs.ca };
    const migrate = await run("npm", ["run", "db:migrate"], env);
    expect(migrate.code, migrate.stderr).toBe(0);
    const seed = await run("npm", ["run", "db:seed", "--", "--if-empty"], env);
    expect(seed.code, seed.stderr).toBe(0);
  });

  it("refuses a server its CA didn't sign, in one clear line", async () => {
    const result = await run("npm", ["run", "db:migrate"], {
      DATABASE_URL: databaseUrl("verify-full"),
      PGSSLROOTCERT: certs.wrongCa,
    });
    expect(result.code).toBe(1);
    const line = result.stderr.trim().split("\n").at(-1);
    expect(line).toMatch(
      /^error: the server's TLS certificate could not be verified \(.+\): check the CA file in PGSSLROOTCERT/,
    );
    expect(result.stderr).not.toContain("not-a-secret");
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it("connects with sslmode=require without verifying, and never without TLS", async () => {
    const required = postgres(databaseUrl("require"), { max: 1, onnotice: () => {} });
    try {
      const [row] = await required`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`;
      expect(row?.ssl).toBe(true);
    } finally {
      await required.end();
    }
    const plain = postgres(databaseUrl("disable"), { max: 1, connect_timeout: 3, onnotice: () => {} });
    await expect(plain`SELECT 1`).rejects.toThrow(/no pg_hba.conf entry|SSL off/);
    await plain.end();
  });
});

describe("the service on both, over TLS", () => {
  it("answers, caches in Valkey over rediss://, and listens for changes, all encrypted", async () => {
    const server = await startOverTls(certs.ca);
    try {
      await expect
        .poll(async () => (await fetch(`${server.url}/health`)).json(), { timeout: 10_000 })
        .toEqual({
          status: "ok",
          database: "up",
          cache: "up",
          changes: "up",
        });
      expect(await (await fetch(`${server.url}/count`)).json()).toEqual({ count: 12_000 });
      const hit = await fetch(`${server.url}/count`);
      expect(hit.headers.get("etag")).not.toBeNull(); // answered from Valkey
      const admin = postgres(databaseUrl("require"), { max: 1, onnotice: () => {} });
      try {
        const rows = await admin`SELECT a.application_name, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
          WHERE a.application_name LIKE 'dellstore-orders%'`;
        expect(rows.length).toBeGreaterThanOrEqual(2); // the pool and the listener
        expect(rows.every((r) => r.ssl)).toBe(true);
      } finally {
        await admin.end();
      }
    } finally {
      await server.stop();
    }
  });

  it("says clearly why when Valkey's certificate doesn't verify, and serves from PostgreSQL", async () => {
    const server = await startOverTls(certs.wrongCa);
    try {
      expect(await (await fetch(`${server.url}/count`)).json()).toEqual({ count: 12_000 });
      expect(await (await fetch(`${server.url}/health`)).json()).toMatchObject({ database: "up", cache: "down" });
      await expect
        .poll(() => server.output(), { timeout: 5000 })
        .toMatch(/"reason":"the server's TLS certificate could not be verified/);
    } finally {
      await server.stop();
    }
  });
});
