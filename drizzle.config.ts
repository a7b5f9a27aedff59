// drizzle-kit's view of the database: DATABASE_URL (or PG_SERVICE_URI), with
// TLS as the service uses it; without one, the embedded database under DATA_DIR.
import { mkdirSync } from "node:fs";
import { defineConfig } from "drizzle-kit";
import { postgresTls } from "./db/client.ts";

const url = process.env.DATABASE_URL || process.env.PG_SERVICE_URI;

function credentials(databaseUrl: string) {
  const { url: plain, ssl } = postgresTls(databaseUrl);
  if (!ssl) return { url: plain };
  const u = new URL(plain);
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: u.pathname.slice(1),
    ssl,
  };
}

function embedded() {
  const dataDir = process.env.DATA_DIR ?? "./.data";
  mkdirSync(dataDir, { recursive: true });
  return { url: `${dataDir}/pgdata` };
}

const common = { dialect: "postgresql", schema: "./db/schema.ts", out: "./db/migrations" } as const;

export default url
  ? defineConfig({ ...common, dbCredentials: credentials(url) })
  : defineConfig({ ...common, driver: "pglite", dbCredentials: embedded() });
