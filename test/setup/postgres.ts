// Finds the PostgreSQL server the tests use: TEST_DATABASE_URL; else a
// throwaway postgres:17 container when a Docker engine answers; else the local
// server. Never skips: with none reachable, the run stops saying what to do.
import postgres from "postgres";
import { dockerAvailable } from "./docker.ts";

export interface ProvidedService {
  url: string;
  source: string;
  stop(): Promise<void>;
}

const localUrl = "postgres://postgres@127.0.0.1:5432/postgres";

export async function providePostgres(): Promise<ProvidedService> {
  const explicit = process.env.TEST_DATABASE_URL;
  if (explicit) return checked({ url: explicit, source: "TEST_DATABASE_URL", stop: async () => {} });
  if (await dockerAvailable()) {
    const { PostgreSqlContainer } = await import("@testcontainers/postgresql");
    const container = await new PostgreSqlContainer("postgres:17").start();
    return checked({
      url: container.getConnectionUri(),
      source: "testcontainers postgres:17",
      stop: async () => void (await container.stop()),
    });
  }
  return checked({ url: localUrl, source: "local server at 127.0.0.1:5432", stop: async () => {} });
}

async function checked(service: ProvidedService): Promise<ProvidedService> {
  const sql = postgres(service.url, { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    await sql`SELECT 1`;
    return service;
  } catch (error) {
    throw new Error(
      `The tests need PostgreSQL and found none (${service.source}: ${(error as Error).message}). ` +
        "Set TEST_DATABASE_URL=postgres://user:password@host:5432/postgres, run a Docker engine " +
        "(testcontainers starts postgres:17), or start the local server: " +
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    );
  } finally {
    await sql.end();
  }
}
