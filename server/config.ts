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

/** A connection URL with one of `schemes`; a bad one is quoted back with its password masked. */
function connectionUrl(schemes: readonly string[], example: string) {
  return optionalUrl.superRefine((value, ctx) => {
    if (value === undefined) return;
    const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value);
    if (hasScheme && URL.canParse(value) && schemes.includes(new URL(value).protocol)) return;
    // Without "scheme://" we can't tell which part is a password: quote none of it.
    const quoted = hasScheme ? `, not ${JSON.stringify(maskSecrets(value))}` : "";
    ctx.addIssue({ code: "custom", message: `must be a URL like ${example}${quoted}` });
  });
}

const postgresUrl = connectionUrl(["postgres:", "postgresql:"], "postgres://user:password@host:5432/dbname");
const valkeyUrl = connectionUrl(["redis:", "rediss:", "valkey:", "valkeys:"], "redis://:password@host:6379");

const positiveInt = z.coerce.number().int().positive();

const envSchema = z.object({
  DATABASE_URL: postgresUrl,
  PG_SERVICE_URI: postgresUrl,
  VALKEY_URL: valkeyUrl,
  VALKEY_SERVICE_URI: valkeyUrl,
  VALKEY_CLUSTER_NODES: z
    .string()
    .trim()
    .transform((value) => (value ? value.split(",").map((node) => node.trim()) : undefined))
    .pipe(z.array(z.string().regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, "must be host:port")).optional())
    .optional(),
  CACHE_TTL_SECONDS: positiveInt.optional(),
  CACHE_TIMEOUT_SECONDS: positiveInt.optional(),
  CACHE_PREFIX: z.string().min(1).default("dellstore"),
  L1_MAX_BYTES: z.preprocess(
    // Number("") is 0, which would turn the tier off unasked.
    (value) => (typeof value === "string" && value.trim() === "" ? Number.NaN : value),
    z.coerce
      .number({ error: "must be a number of bytes (0 turns the in-process tier off)" })
      .int("must be a whole number of bytes")
      .min(0, "must be 0 (off) or a number of bytes")
      .max(Number.MAX_SAFE_INTEGER)
      .default(64 * 1024 * 1024),
  ),
  DATABASE_TIMEOUT_SECONDS: positiveInt.default(10),
  DATABASE_POOL_SIZE: positiveInt.optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  HOST: z.string().min(1).default("127.0.0.1"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  DATA_DIR: z.string().min(1).default("./.data"),
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
  MAX_BODY_BYTES: positiveInt.default(64 * 1024),
  HTTP_HEADERS_TIMEOUT_SECONDS: positiveInt.default(10),
  HTTP_REQUEST_TIMEOUT_SECONDS: positiveInt.default(30),
  ALLOWED_HOSTS: z
    .string()
    .transform((value) =>
      value
        .split(",")
        .map((host) => host.trim().toLowerCase())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(/^[a-z0-9.-]+$|^\[?[0-9a-f:]+\]?$/, "must be host names, comma-separated")))
    .default([]),
  SHUTDOWN_GRACE_SECONDS: positiveInt.default(10),
  MAX_SUBSCRIPTIONS: positiveInt.default(10_000),
});

export interface Config {
  /** A PostgreSQL URL, or undefined for the embedded PGlite database under `dataDir`. */
  databaseUrl: string | undefined;
  /** Longest wait for a database connection or statement before answering SERVICE_UNAVAILABLE. */
  databaseTimeoutSeconds: number;
  /** Connections in the app's pool (DATABASE_POOL_SIZE). */
  databasePoolSize: number;
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

/** Parses the environment; throws a ConfigError naming each bad variable (never a password). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  }
  const e = parsed.data;
  return {
    databaseUrl: e.DATABASE_URL ?? e.PG_SERVICE_URI,
    databaseTimeoutSeconds: e.DATABASE_TIMEOUT_SECONDS,
    databasePoolSize: e.DATABASE_POOL_SIZE ?? defaultPoolSize(),
    valkeyUrl: e.VALKEY_URL ?? e.VALKEY_SERVICE_URI,
    valkeyClusterNodes: e.VALKEY_CLUSTER_NODES,
    cacheTtlSeconds: e.CACHE_TTL_SECONDS ?? e.CACHE_TIMEOUT_SECONDS ?? 120,
    cachePrefix: e.CACHE_PREFIX,
    l1MaxBytes: e.L1_MAX_BYTES,
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
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
