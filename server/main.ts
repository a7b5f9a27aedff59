// npm start: the service, configured from the environment.
import { DataDirInUseError } from "../db/data-dir-lock.ts";
import { scriptArgs } from "../db/script.ts";
import { StartupError, startApp } from "./app.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { createLogger } from "./logger.ts";
import { startTracing, tracingRequested } from "./telemetry/index.ts";

scriptArgs(
  'usage: npm start  (node dist/server/main.js)\n  Serves the API on HOST:PORT (default 127.0.0.1:8000), configured by the environment variables in\n  README.md, "Configuration" (DATABASE_URL, VALKEY_URL, API_TOKEN, ...). Stops on SIGTERM or SIGINT.',
  {},
);

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}

const log = createLogger(config.logLevel);
// OpenTelemetry only when an OTEL_* variable asks for it; the SDK reads them itself.
const tracing = tracingRequested(process.env) ? await startTracing() : undefined;
try {
  const app = await startApp(config, log, { tracing });
  log.info({ url: app.url, tracing: tracing !== undefined }, `listening on ${app.url}`);
  const stop = async (signal: NodeJS.Signals) => {
    log.info({ signal }, "shutting down: finishing in-flight requests");
    await app.close();
    await tracing?.shutdown().catch((error: unknown) => log.warn({ err: error }, "could not flush the last spans"));
    log.info("stopped");
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
} catch (error) {
  const fix = whatToFix(error);
  log.fatal(fix ? {} : { err: error }, fix ? `start-up failed: ${fix}` : "start-up failed");
  process.exit(1);
}

/**
 * A start-up failure the operator can fix, in one line that says how: the
 * database to create or migrate, the process holding DATA_DIR, the address to
 * listen on. Anything else is unexpected and keeps its stack.
 */
function whatToFix(error: unknown): string | undefined {
  if (error instanceof StartupError || error instanceof DataDirInUseError) return error.message;
  const { code, address, port } = error as { code?: unknown; address?: unknown; port?: unknown };
  const at = `${address}:${port}`;
  if (code === "EADDRINUSE")
    return `${at} is already in use: stop what listens there, or set PORT (or HOST) to another`;
  if (code === "EACCES") return `no permission to listen on ${at}: set PORT to 1024 or above`;
  if (code === "EADDRNOTAVAIL") return `${address} is not an address of this machine: check HOST`;
  return undefined;
}
