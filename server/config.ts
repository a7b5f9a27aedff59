// Configuration is read once, at start-up, from the environment. A bad value
// stops start-up with a message naming the variable, never a half-configured server.
import { availableParallelism } from "node:os";
import { z } from "zod";
import { maskSecrets } from "./secrets.ts";

const optionalUrl = z
  .string()
  .trim()
  .transform((value) => value || undefined)
  .optional();

/** Whether `value` is a URL with "scheme://" and one of `schemes`. */
function isConnectionUrl(value: string, schemes: readonly string[]): boolean {
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value);
  return hasScheme && URL.canParse(value) && schemes.includes(new URL(value).protocol);
}

/** A connection URL with one of `schemes`; what is wrong is said by loadConfig, with the password masked. */
function connectionUrl(schemes: readonly string[], example: string) {
  return optionalUrl.superRefine((value, ctx) => {
    if (value === undefined || isConnectionUrl(value, schemes)) return;
    ctx.addIssue({ code: "custom", message: `must be a URL like ${example}` });
  });
}

const postgresSchemes = ["postgres:", "postgresql:"];

// The examples carry no password: the logger would mask it to "***" (a password goes in as user:password@host).
const postgresUrl = connectionUrl(
  postgresSchemes,
  "postgres://user@host:5432/dbname (with a password: user:password@host)",
);

/** 1st, 2nd, 3rd, 4th, …, 11th, 12th, 13th, …, 21st. */
function ordinal(n: number): string {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  return `${n}${(!teen && ["th", "st", "nd", "rd"][n % 10]) || "th"}`;
}

/**
 * DATABASE_REPLICA_URLS: PostgreSQL URLs separated by commas, each by
 * DATABASE_URL's rules. A bad one is named by its place, never quoted: a
 * password with an unescaped comma would be split, and half of it is no longer
 * recognizable as a password to mask.
 */
const postgresUrls = z
  .string()
  .optional()
  .transform((value, ctx) => {
    const entries = (value ?? "").split(",").map((entry) => entry.trim());
    const bad = entries.flatMap((entry, index) =>
      entry && !isConnectionUrl(entry, postgresSchemes) ? [ordinal(index + 1)] : [],
    );
    if (bad.length > 0) {
      const which =
        bad.length === 1 ? `the ${bad[0]} is not` : `the ${bad.slice(0, -1).join(", ")} and ${bad.at(-1)} are not`;
      ctx.addIssue({
        code: "custom",
        message:
          "must be PostgreSQL URLs separated by commas, like postgres://user@replica1:5432/dbname,postgres://user@replica2:5432/dbname; " +
          `${which} (a comma in a password is written %2C)`,
      });
    }
    return entries.filter(Boolean);
  });

const valkeyUrl = connectionUrl(
  ["redis:", "rediss:", "valkey:", "valkeys:"],
  "redis://host:6379 (with a password: :password@host, or rediss:// for TLS)",
);

/** A whole number from `min` up, every failure said the same way: what it must be. */
function wholeNumber(requirement: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return z.preprocess(
    // Number("") and Number(" ") are 0: an empty value is no number, not a zero.
    (value) => (typeof value === "string" && value.trim() === "" ? Number.NaN : value),
    z.coerce.number({ error: requirement }).int(requirement).min(min, requirement).max(max, requirement),
  );
}

const seconds = wholeNumber("must be a whole number of seconds, 1 or more", 1);
const count = (what: string) => wholeNumber(`must be a whole number of ${what}, 1 or more`, 1);
const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const envSchema = z.object({
  DATABASE_URL: postgresUrl,
  PG_SERVICE_URI: postgresUrl,
  VALKEY_URL: valkeyUrl,
  VALKEY_SERVICE_URI: valkeyUrl,
  VALKEY_CLUSTER_NODES: z
    .string()
    .trim()
    .transform((value) => (value ? value.split(",").map((node) => node.trim()) : undefined))
    .pipe(
      z
        .array(
          z
            .string()
            .regex(
              /^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/,
              "must be host:port pairs separated by commas, like 10.0.0.1:7000,10.0.0.2:7000",
            ),
        )
        .optional(),
    )
    .optional(),
  CACHE_TTL_SECONDS: seconds.optional(),
  CACHE_TIMEOUT_SECONDS: seconds.optional(),
  CACHE_PREFIX: z.string().min(1, "must not be empty (unset, it is dellstore)").default("dellstore"),
  L1_MAX_BYTES: wholeNumber("must be a whole number of bytes (0 turns the in-process tier off)", 0).default(
    64 * 1024 * 1024,
  ),
  DATABASE_REPLICA_URLS: postgresUrls,
  DATABASE_REPLICA_MAX_LAG_MS: wholeNumber("must be a whole number of milliseconds, 1 or more", 1).default(1000),
  DATABASE_TIMEOUT_SECONDS: seconds.default(10),
  DATABASE_POOL_SIZE: count("connections").optional(),
  // 0: any free port, which the "listening on" line names (the tests start servers so).
  PORT: wholeNumber("must be a port number (1–65535, or 0 for any free one)", 0, 65535).default(8000),
  HOST: z.string().min(1, "must be a host name or an address to listen on, like 127.0.0.1").default("127.0.0.1"),
  LOG_LEVEL: z.enum(logLevels, `must be one of ${logLevels.join(", ")}`).default("info"),
  LOG_FORMAT: z
    .string()
    .trim()
    .transform((value) => value || undefined)
    .pipe(z.enum(["pretty", "json"], "must be pretty or json (unset: pretty on a terminal, json otherwise)").optional())
    .optional(),
  DATA_DIR: z.string().min(1, "must be a directory (unset, it is ./.data)").default("./.data"),
  API_TOKEN: z
    .string()
    .trim()
    .transform((value) => value || undefined)
    .pipe(
      z
        .string()
        .min(16, "must be at least 16 characters")
        // It travels as one word after "Bearer "; with a space inside no request could ever match it.
        .regex(
          /^\S+$/,
          "must not contain spaces or other whitespace (it is sent as `Authorization: Bearer <API_TOKEN>`)",
        )
        .optional(),
    )
    .optional(),
  MAX_BODY_BYTES: count("bytes").default(64 * 1024),
  HTTP_HEADERS_TIMEOUT_SECONDS: seconds.default(10),
  HTTP_REQUEST_TIMEOUT_SECONDS: seconds.default(30),
  ALLOWED_HOSTS: z
    .string()
    .transform((value) =>
      value
        .split(",")
        .map((host) => host.trim().toLowerCase())
        .filter(Boolean),
    )
    .pipe(
      z.array(
        z
          .string()
          .regex(/^[a-z0-9.-]+$|^\[?[0-9a-f:]+\]?$/, "must be host names separated by commas, like example.com"),
      ),
    )
    .default([]),
  SHUTDOWN_GRACE_SECONDS: seconds.default(10),
  MAX_SUBSCRIPTIONS: count("streams").default(10_000),
});

// Never quoted back, not even masked (a list of URLs: its message names the bad one's place).
const secretVariables = new Set(["API_TOKEN", "DATABASE_REPLICA_URLS"]);
const urlVariables = new Set(["DATABASE_URL", "PG_SERVICE_URI", "VALKEY_URL", "VALKEY_SERVICE_URI"]);

/** What the variable held, as the message quotes it: `got 'abc'`; never a secret. */
function got(name: string, value: string | undefined): string {
  if (value === undefined || secretVariables.has(name)) return "";
  if (value.trim() === "") return ", got an empty value";
  if (urlVariables.has(name)) {
    // Without "scheme://" there's no telling which part is a password: quote none of it.
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value.trim())) return "";
    value = maskSecrets(value.trim());
  }
  const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
  return /^[\x20-\x7e]*$/.test(shown) && !shown.includes("'") ? `, got '${shown}'` : `, got ${JSON.stringify(shown)}`;
}

export interface Config {
  /** A PostgreSQL URL, or undefined for the embedded PGlite database under `dataDir`. */
  databaseUrl: string | undefined;
  /** Longest wait for a database connection or statement before answering SERVICE_UNAVAILABLE. */
  databaseTimeoutSeconds: number;
  /** Connections in the app's pool (DATABASE_POOL_SIZE). */
  databasePoolSize: number;
  /** Read replicas of databaseUrl's server (DATABASE_REPLICA_URLS); empty: none. */
  databaseReplicaUrls: string[];
  /** A replica further behind the primary than this many milliseconds is skipped (DATABASE_REPLICA_MAX_LAG_MS). */
  databaseReplicaMaxLagMs: number;
  valkeyUrl: string | undefined;
  /** `host:port` seeds of a Valkey Cluster; when set, the cluster is the cache. */
  valkeyClusterNodes: string[] | undefined;
  cacheTtlSeconds: number;
  cachePrefix: string;
  /** The in-process tier's budget in bytes; 0: no in-process tier. */
  l1MaxBytes: number;
  port: number;
  host: string;
  logLevel: z.infer<typeof envSchema>["LOG_LEVEL"];
  /** LOG_FORMAT; unset: pretty when standard output is a terminal, JSON otherwise (server/logger.ts). */
  logFormat: "pretty" | "json" | undefined;
  dataDir: string;
  /** When set, mutations need `Authorization: Bearer <apiToken>`. */
  apiToken: string | undefined;
  /** Live count streams open at once on this instance; more get 503. */
  maxSubscriptions: number;
  http: {
    /** Largest request body, in bytes; larger ones are refused with 413 before parsing. */
    maxBodyBytes: number;
    /** A client must send its request headers within this many seconds (slowloris). */
    headersTimeoutSeconds: number;
    /** ...and its whole request within this many. */
    requestTimeoutSeconds: number;
    /** Host names served besides loopback ones while bound to a loopback address (DNS rebinding). */
    allowedHosts: string[];
    /** On SIGTERM, in-flight requests get this long to finish before their connections are closed. */
    shutdownGraceSeconds: number;
  };
}

/**
 * Twice this host's cores: writes are bound by PostgreSQL's CPU, and more
 * transactions at once than it has cores only queue inside it, taking the CPU
 * the app needs from it when they share a host (README, "Sizing the pool").
 */
export const defaultPoolSize = () => 2 * availableParallelism();

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Parses the environment; throws a ConfigError saying, for each bad variable,
 * what it must be and what it held ("PORT must be a port number (1–65535, or 0
 * for any free one), got 'abc'"), never a password or a token.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    // One problem per variable: a value can break several rules of the same requirement.
    const problems = new Map<string, string>();
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0]);
      if (!problems.has(name)) problems.set(name, `${name} ${issue.message}${got(name, env[name])}`);
    }
    throw new ConfigError(`invalid configuration: ${[...problems.values()].join("; ")}`);
  }
  const e = parsed.data;
  const databaseUrl = e.DATABASE_URL ?? e.PG_SERVICE_URI;
  if (e.DATABASE_REPLICA_URLS.length > 0 && databaseUrl === undefined) {
    throw new ConfigError(
      "invalid configuration: DATABASE_REPLICA_URLS must come with DATABASE_URL, the primary they replicate " +
        "(without it the service keeps its data in the embedded database, which has no replicas)",
    );
  }
  return {
    databaseUrl,
    databaseTimeoutSeconds: e.DATABASE_TIMEOUT_SECONDS,
    databasePoolSize: e.DATABASE_POOL_SIZE ?? defaultPoolSize(),
    databaseReplicaUrls: e.DATABASE_REPLICA_URLS,
    databaseReplicaMaxLagMs: e.DATABASE_REPLICA_MAX_LAG_MS,
    valkeyUrl: e.VALKEY_URL ?? e.VALKEY_SERVICE_URI,
    valkeyClusterNodes: e.VALKEY_CLUSTER_NODES,
    cacheTtlSeconds: e.CACHE_TTL_SECONDS ?? e.CACHE_TIMEOUT_SECONDS ?? 120,
    cachePrefix: e.CACHE_PREFIX,
    l1MaxBytes: e.L1_MAX_BYTES,
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    dataDir: e.DATA_DIR,
    apiToken: e.API_TOKEN,
    maxSubscriptions: e.MAX_SUBSCRIPTIONS,
    http: {
      maxBodyBytes: e.MAX_BODY_BYTES,
      headersTimeoutSeconds: e.HTTP_HEADERS_TIMEOUT_SECONDS,
      requestTimeoutSeconds: e.HTTP_REQUEST_TIMEOUT_SECONDS,
      allowedHosts: e.ALLOWED_HOSTS,
      shutdownGraceSeconds: e.SHUTDOWN_GRACE_SECONDS,
    },
  };
}

/**
 * LOG_FORMAT alone, for saying that the rest of the configuration is wrong in
 * the format asked for: unset or itself wrong, the format is chosen by the terminal.
 */
export function logFormatSetting(env: NodeJS.ProcessEnv = process.env): Config["logFormat"] {
  const parsed = envSchema.shape.LOG_FORMAT.safeParse(env.LOG_FORMAT);
  return parsed.success ? parsed.data : undefined;
}

/**
 * The PostgreSQL URL the service and the db scripts use (DATABASE_URL, else
 * PG_SERVICE_URI), read as loadConfig reads it, without checking the rest.
 */
export function configuredDatabaseUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.DATABASE_URL?.trim() || env.PG_SERVICE_URI?.trim() || undefined;
}
