import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../server/config.ts";
import { lastJson, run } from "./support/run.ts";

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
    ["LOG_FORMAT", "xml"],
    ["API_TOKEN", "short"],
    ["MAX_BODY_BYTES", "lots"],
    ["L1_MAX_BYTES", "64MiB"],
    ["L1_MAX_BYTES", "-1"],
    ["L1_MAX_BYTES", "1.5"],
    ["L1_MAX_BYTES", ""],
    ["DATABASE_POOL_SIZE", "0"],
    ["DATABASE_POOL_SIZE", "many"],
    ["VALKEY_CLUSTER_NODES", "a:1,b"],
    ["ALLOWED_HOSTS", "exa mple.com"],
    ["HOST", ""],
  ])("refuses %s=%j, saying what the variable must be", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^invalid configuration: ${name} must (be|not) `));
    // In the user's words: none of zod's ("Invalid input: expected number, received NaN").
    expect(() => loadConfig({ [name]: value })).not.toThrow(/invalid input|expected|received|NaN/i);
  });

  it.each([
    ["PORT", "abc", "PORT must be a port number (1–65535, or 0 for any free one), got 'abc'"],
    ["PORT", "-1", "PORT must be a port number (1–65535, or 0 for any free one), got '-1'"],
    ["CACHE_TTL_SECONDS", "", "CACHE_TTL_SECONDS must be a whole number of seconds, 1 or more, got an empty value"],
    ["CACHE_TTL_SECONDS", "1.5", "CACHE_TTL_SECONDS must be a whole number of seconds, 1 or more, got '1.5'"],
    ["LOG_LEVEL", "chatty", "LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got 'chatty'"],
    ["DATABASE_POOL_SIZE", "many", "DATABASE_POOL_SIZE must be a whole number of connections, 1 or more, got 'many'"],
    [
      "L1_MAX_BYTES",
      "64MiB",
      "L1_MAX_BYTES must be a whole number of bytes (0 turns the in-process tier off), got '64MiB'",
    ],
    // A token is a secret: what is wrong with it is said, never what it was.
    ["API_TOKEN", "short-secret", "API_TOKEN must be at least 16 characters"],
    [
      "VALKEY_URL",
      "http://:s3cret@cache:6379",
      "VALKEY_URL must be a URL like redis://host:6379 (with a password: :password@host, or rediss:// for TLS), got 'http://:***@cache:6379'",
    ],
    // Without a scheme nothing tells the password from the rest: nothing of it is quoted.
    [
      "DATABASE_URL",
      "admin:s3cret@db/shop",
      "DATABASE_URL must be a URL like postgres://user@host:5432/dbname (with a password: user:password@host)",
    ],
  ])("says %s=%j as `%s`", (name, value, said) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new ConfigError(`invalid configuration: ${said}`));
  });

  it("names every bad variable, once each", () => {
    expect(() => loadConfig({ PORT: "abc", CACHE_TTL_SECONDS: "-1.5", HOST: "" })).toThrow(
      new ConfigError(
        "invalid configuration: CACHE_TTL_SECONDS must be a whole number of seconds, 1 or more, got '-1.5'; " +
          "PORT must be a port number (1–65535, or 0 for any free one), got 'abc'; " +
          "HOST must be a host name or an address to listen on, like 127.0.0.1, got an empty value",
      ),
    );
  });

  it("reads LOG_FORMAT, unset meaning: as the terminal says", () => {
    expect(loadConfig({}).logFormat).toBeUndefined();
    expect(loadConfig({ LOG_FORMAT: "pretty" }).logFormat).toBe("pretty");
    expect(loadConfig({ LOG_FORMAT: " json " }).logFormat).toBe("json");
  });

  it("stops `npm start` with one log line naming the variable, never echoing secrets", async () => {
    const result = await run("npm", ["start"], {
      CACHE_TTL_SECONDS: "often",
      DATABASE_URL: "postgres://admin:s3cret-password@db.example:5432/shop",
    });
    expect(result.code).not.toBe(0);
    // stdout is a pipe here: the line is JSON, as the server's every other line (test/log-format.test.ts: a terminal's).
    expect(lastJson(result.stdout)).toMatchObject({
      level: 60,
      msg: "invalid configuration: CACHE_TTL_SECONDS must be a whole number of seconds, 1 or more, got 'often'",
    });
    expect(result.stdout + result.stderr).not.toContain("s3cret-password");
  });
});

describe("read replicas' configuration", () => {
  const primary = { DATABASE_URL: "postgres://app@primary:5432/shop" };

  it("has none unless DATABASE_REPLICA_URLS names some, skipped beyond 1000 ms of lag", () => {
    expect(loadConfig({})).toMatchObject({ databaseReplicaUrls: [], databaseReplicaMaxLagMs: 1000 });
    expect(loadConfig({ ...primary, DATABASE_REPLICA_URLS: "" }).databaseReplicaUrls).toEqual([]);
    expect(loadConfig({ ...primary, DATABASE_REPLICA_URLS: " " }).databaseReplicaUrls).toEqual([]);
  });

  it("reads each URL by DATABASE_URL's rules, TLS parameters and escaped passwords as they are", () => {
    expect(
      loadConfig({
        ...primary,
        DATABASE_REPLICA_URLS:
          " postgres://app@replica1:5432/shop , postgresql://app:pa%2Css@replica2/shop?sslmode=verify-full,",
        DATABASE_REPLICA_MAX_LAG_MS: "250",
      }),
    ).toMatchObject({
      databaseReplicaUrls: [
        "postgres://app@replica1:5432/shop",
        "postgresql://app:pa%2Css@replica2/shop?sslmode=verify-full",
      ],
      databaseReplicaMaxLagMs: 250,
    });
    // PG_SERVICE_URI is the primary as well as DATABASE_URL is.
    expect(
      loadConfig({ PG_SERVICE_URI: "postgres://a/b", DATABASE_REPLICA_URLS: "postgres://c/b" }).databaseReplicaUrls,
    ).toEqual(["postgres://c/b"]);
  });

  it.each([
    ["0", "must be a whole number of milliseconds, 1 or more, got '0'"],
    ["soon", "must be a whole number of milliseconds, 1 or more, got 'soon'"],
    ["1.5", "must be a whole number of milliseconds, 1 or more, got '1.5'"],
    ["", "must be a whole number of milliseconds, 1 or more, got an empty value"],
  ])("refuses DATABASE_REPLICA_MAX_LAG_MS=%j", (value, said) => {
    expect(() => loadConfig({ ...primary, DATABASE_REPLICA_MAX_LAG_MS: value })).toThrow(
      new ConfigError(`invalid configuration: DATABASE_REPLICA_MAX_LAG_MS ${said}`),
    );
  });

  const rule =
    "DATABASE_REPLICA_URLS must be PostgreSQL URLs separated by commas, like " +
    "postgres://user@replica1:5432/dbname,postgres://user@replica2:5432/dbname;";

  it.each([
    ["http://app@replica1/shop", "the 1st is not"],
    ["postgres://app@replica1/shop,replica2:5432", "the 2nd is not"],
    ["postgres://a@r1/shop,mysql://r2/shop,postgres://a@r3/shop,r4", "the 2nd and 4th are not"],
    // An unescaped comma splits a password: neither half may be quoted, masked or not.
    ["postgres://app:s3cret,pw@replica1/shop", "the 1st and 2nd are not"],
  ])("says which of DATABASE_REPLICA_URLS=%j is wrong by its place, quoting none of it", (value, which) => {
    const attempt = () => loadConfig({ ...primary, DATABASE_REPLICA_URLS: value });
    expect(attempt).toThrow(
      new ConfigError(`invalid configuration: ${rule} ${which} (a comma in a password is written %2C)`),
    );
    expect(attempt).not.toThrow(/s3cret|pw@|replica1\/|mysql/);
  });

  it("needs a PostgreSQL primary: the embedded database has no replicas", () => {
    expect(() => loadConfig({ DATABASE_REPLICA_URLS: "postgres://app@replica1/shop" })).toThrow(
      new ConfigError(
        "invalid configuration: DATABASE_REPLICA_URLS must come with DATABASE_URL, the primary they replicate " +
          "(without it the service keeps its data in the embedded database, which has no replicas)",
      ),
    );
  });
});
