// Vitest global setup: provides the real services once per run, and template
// databases (migrated; migrated and seeded) that each test file clones.
import { spawn } from "node:child_process";
import { rm } from "node:fs/promises";
import postgres from "postgres";
import type { TestProject } from "vitest/node";
import { connectPostgres } from "../../db/client.ts";
import { defaultDataset, generateDataset } from "../../db/load/generate.ts";
import { databaseUrl } from "../support/urls.ts";
import { type ProvidedService, providePostgres } from "./postgres.ts";
import { quietPath, turnPath } from "./schedule.ts";
import { deleteKeys, provideValkey } from "./valkey.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** An administrative URL of the test PostgreSQL server. */
    postgresUrl: string;
    /** A Valkey-protocol server's URL. */
    valkeyUrl: string;
    /** Prefix of every database and cache key this run creates; they are removed at the end. */
    runPrefix: string;
  }
}

let pg: ProvidedService | undefined;
let valkey: ProvidedService | undefined;
let runPrefix = "";

export async function setup(project: TestProject): Promise<void> {
  runPrefix = `dellstore_test_${Date.now().toString(36)}_${process.pid}`;
  // Tests that run what ships (dist/: the container's commands, the client package) need it current.
  // The build takes a core for seconds; the services and templates wait on PostgreSQL meanwhile.
  const built = build();
  try {
    [pg, valkey] = await Promise.all([providePostgres(), provideValkey()]);
    console.log(`tests use PostgreSQL from ${pg.source} and Valkey from ${valkey.source}`);
    await createTemplates(pg.url);
  } finally {
    await built.catch(() => {}); // a failed build is reported below, not by a rejection nobody awaits yet
  }
  await built;
  project.provide("postgresUrl", pg.url);
  project.provide("valkeyUrl", valkey.url);
  project.provide("runPrefix", runPrefix);
}

export async function teardown(): Promise<void> {
  for (const path of [turnPath(runPrefix), quietPath(runPrefix)]) await rm(path, { recursive: true, force: true });
  if (valkey) {
    await deleteKeys(valkey.url, runPrefix);
    await valkey.stop();
  }
  if (!pg) return;
  const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
  try {
    const databases = await sql<{ datname: string }[]>`
      SELECT datname FROM pg_database WHERE datname LIKE ${`${runPrefix}%`}`;
    for (const { datname } of databases) {
      await sql.unsafe(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    }
  } finally {
    await sql.end();
    await pg.stop();
  }
}

/** `npm run build`, resolved once it succeeded; rejected with its output if it failed. */
function build(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("npm", ["run", "-s", "build"]);
    let output = "";
    const collect = (chunk: Buffer) => {
      output += chunk;
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`npm run build failed:\n${output}`))));
  });
}

/** Two templates: "empty" (migrated) and "seeded" (migrated + the generated 20,000/12,000 dataset). */
async function createTemplates(adminUrl: string): Promise<void> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    for (const kind of ["empty", "seeded"] as const) {
      const name = `${runPrefix}_${kind}`;
      await sql.unsafe(`CREATE DATABASE "${name}"`);
      const database = connectPostgres(databaseUrl(adminUrl, name), { max: 1 });
      try {
        await database.migrate();
        if (kind === "seeded") await generateDataset(database.db, defaultDataset);
      } finally {
        await database.close();
      }
    }
  } finally {
    await sql.end();
  }
}
