// npm start (and npm run dev): the service, configured from the environment.
import { constants } from "node:os";
import { DataDirInUseError } from "../db/data-dir-lock.ts";
import { scriptArgs } from "../db/script.ts";
import { StartupError, startApp } from "./app.ts";
import { ConfigError, loadConfig, logFormatSetting } from "./config.ts";
import { createLogger, type Logger, logFormat } from "./logger.ts";
import { startTracing, tracingRequested } from "./telemetry/index.ts";

scriptArgs(
  [
    "usage: npm start       (node dist/server/main.js, what `npm run build` compiled)",
    "       npm run dev     (server/*.ts as they are, restarted when a file changes)",
    "  Serves the API on HOST:PORT (default 127.0.0.1:8000), configured by the environment variables in",
    '  README.md, "Configuration" (DATABASE_URL, VALKEY_URL, API_TOKEN, LOG_FORMAT, ...). On SIGTERM or SIGINT',
    "  (Ctrl-C) it finishes the requests in flight and stops; a third signal stops it at once.",
  ].join("\n"),
  {},
);

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  // Said as every other start-up failure is: a log line, in the format the terminal or LOG_FORMAT asks for.
  createLogger("info", undefined, logFormat(logFormatSetting())).fatal(error.message);
  process.exit(1);
}

const log = createLogger(config.logLevel, undefined, logFormat(config.logFormat));
// OpenTelemetry only when an OTEL_* variable asks for it; the SDK reads them itself.
const tracing = tracingRequested(process.env) ? await startTracing() : undefined;
try {
  const app = await startApp(config, log, { tracing });
  log.info({ url: app.url, tracing: tracing !== undefined }, `listening on ${app.url}`);
  stopOnSignals(log, async () => {
    await app.close();
    await tracing?.shutdown().catch((error: unknown) => log.warn({ err: error }, "could not flush the last spans"));
  });
} catch (error) {
  const fix = whatToFix(error);
  log.fatal(fix ? {} : { err: error }, fix ? `start-up failed: ${fix}` : "start-up failed");
  process.exit(1);
}

/**
 * SIGTERM or SIGINT drains (`close`) and exits 0. Signals come in pairs: a
 * Ctrl-C under `npm start` reaches the server from the terminal (its whole
 * process group) and again from npm, which forwards it; so a second signal
 * must not cut the drain short. A third one stops at once, as many servers
 * do, for whoever can't wait for SHUTDOWN_GRACE_SECONDS.
 */
function stopOnSignals(log: Logger, close: () => Promise<void>): void {
  let received = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    received += 1;
    if (received === 1) {
      log.info({ signal }, "shutting down: finishing in-flight requests");
      close().then(
        () => {
          log.info("stopped");
          process.exit(0);
        },
        (error: unknown) => {
          log.error({ err: error }, "could not stop cleanly");
          process.exit(1);
        },
      );
    } else if (received === 2) {
      log.info({ signal }, `${signal} again: still finishing the requests in flight (a third signal stops at once)`);
    } else {
      log.warn({ signal }, `a third signal (${signal}): stopping at once, without finishing the requests in flight`);
      // As a shell reports a process ended by that signal. Exiting runs the exit hooks: DATA_DIR's lock is released.
      process.exit(128 + constants.signals[signal]);
    }
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
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
