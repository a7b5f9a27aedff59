import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../server/config.ts";
import { run } from "./support/run.ts";

describe("configuration", () => {
  it("has the contract's defaults", () => {
    expect(loadConfig({})).toMatchObject({
      databaseUrl: undefined,
      valkeyUrl: undefined,
      cacheTtlSeconds: 120,
      port: 8000,
      host: "127.0.0.1",
      logLevel: "info",
      l1MaxBytes: 64 * 1024 * 1024,
      databasePoolSize: 2 * availableParallelism(),
    });
    expect(loadConfig({ DATABASE_POOL_SIZE: "3" }).databasePoolSize).toBe(3);
    expect(loadConfig({ L1_MAX_BYTES: "0" }).l1MaxBytes).toBe(0);
    expect(loadConfig({ L1_MAX_BYTES: "1048576" }).l1MaxBytes).toBe(1048576);
  });

  it("reads the managed-service names too, preferring the primary ones", () => {
    expect(
      loadConfig({ PG_SERVICE_URI: "postgres://a/b", VALKEY_SERVICE_URI: "rediss://c", CACHE_TIMEOUT_SECONDS: "5" }),
    ).toMatchObject({
      databaseUrl: "postgres://a/b",
      valkeyUrl: "rediss://c",
      cacheTtlSeconds: 5,
    });
    expect(
      loadConfig({
        DATABASE_URL: "postgres://x/y",
        PG_SERVICE_URI: "postgres://a/b",
        CACHE_TTL_SECONDS: "7",
        CACHE_TIMEOUT_SECONDS: "5",
      }),
    ).toMatchObject({
      databaseUrl: "postgres://x/y",
      cacheTtlSeconds: 7,
    });
  });

  it.each([
    ["CACHE_TTL_SECONDS", "abc"],
    ["CACHE_TTL_SECONDS", "0"],
    ["CACHE_TTL_SECONDS", "-5"],
    ["CACHE_TTL_SECONDS", "1.5"],
    ["CACHE_TTL_SECONDS", ""],
    ["CACHE_TIMEOUT_SECONDS", "soon"],
    ["PORT", "70000"],
    ["LOG_LEVEL", "chatty"],
    ["API_TOKEN", "short"],
    ["MAX_BODY_BYTES", "lots"],
    ["L1_MAX_BYTES", "64MiB"],
    ["L1_MAX_BYTES", "-1"],
    ["L1_MAX_BYTES", "1.5"],
    ["L1_MAX_BYTES", ""],
    ["DATABASE_POOL_SIZE", "0"],
    ["DATABASE_POOL_SIZE", "many"],
  ])("refuses %s=%j, naming the variable", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^invalid configuration: ${name}: `));
  });

  it("stops `npm start` with a one-line message naming the variable, never echoing secrets", async () => {
    const result = await run("npm", ["start"], {
      CACHE_TTL_SECONDS: "often",
      DATABASE_URL: "postgres://admin:s3cret-password@db.example:5432/shop",
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/^invalid configuration: CACHE_TTL_SECONDS: /m);
    expect(result.stdout + result.stderr).not.toContain("s3cret-password");
  });
});
