// What the benchmarks run on: their own database (migrated and seeded) and key
// prefix on the local services, removed afterwards.
import postgres from "postgres";
import { connectPostgres } from "../db/client.ts";
import { generateDataset } from "../db/load/generate.ts";
import { deleteKeys } from "../test/setup/valkey.ts";

export interface BenchEnvironment {
  databaseUrl: string;
  valkeyUrl: string;
  prefix: string;
  cleanup(): Promise<void>;
}

export async function createBenchEnvironment(dataset: {
  customers: number;
  orders: number;
}): Promise<BenchEnvironment> {
  const adminUrl = process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const valkeyUrl = process.env.BENCH_VALKEY_URL ?? "redis://127.0.0.1:6379";
  const name = `dellstore_bench_${Date.now().toString(36)}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE "${name}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const database = connectPostgres(url.toString(), { max: 1 });
  try {
    await database.migrate();
    await generateDataset(database.db, dataset);
    await database.sql?.unsafe("VACUUM ANALYZE orders");
  } finally {
    await database.close();
  }
  return {
    databaseUrl: url.toString(),
    valkeyUrl,
    prefix: name,
    async cleanup() {
      await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
      await deleteKeys(valkeyUrl, name);
    },
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}
