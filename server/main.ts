// npm start: the service, configured from the environment.
import { DataDirInUseError } from "../db/data-dir-lock.ts";
import { StartupError, startApp } from "./app.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { createLogger } from "./logger.ts";
import { startTracing, tracingRequested } from "./telemetry/index.ts";

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
  // What to do about it, in the message itself: the database to create or migrate, the process holding DATA_DIR.
  const known = error instanceof StartupError || error instanceof DataDirInUseError;
  log.fatal(known ? {} : { err: error }, known ? `start-up failed: ${error.message}` : "start-up failed");
  process.exit(1);
}
