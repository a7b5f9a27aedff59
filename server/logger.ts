import { pino } from "pino";
import { PinoPretty } from "pino-pretty";
import { maskDeep, maskSecrets } from "./secrets.ts";

export type Logger = pino.Logger;

/** JSON lines, for whatever collects the logs; pretty, for a person at a terminal (pino-pretty). */
export type LogFormat = "json" | "pretty";

/** LOG_FORMAT when set, else pretty on a terminal and JSON everywhere else (a pipe, a file, a collector). */
export function logFormat(chosen: LogFormat | undefined, stream: { isTTY?: boolean } = process.stdout): LogFormat {
  return chosen ?? (stream.isTTY ? "pretty" : "json");
}

// Paths that could carry secrets if anything ever logs them; pino blanks them.
const redact = ["*.password", "*.databaseUrl", "*.valkeyUrl", "*.authorization", "*.headers.authorization"];

/**
 * A logger that never writes a password: besides the paths above, every
 * string of every line (the message, any field, an error's own properties such
 * as ERR_INVALID_URL's `input`) has the passwords of URLs in it masked. JSON
 * lines by default; `pretty` renders the same lines for a person, after the
 * masking, on standard output (or `destination`).
 */
export function createLogger(level: string, destination?: pino.DestinationStream, format: LogFormat = "json"): Logger {
  return pino(
    {
      level,
      redact,
      base: { service: "dellstore-orders" },
      hooks: {
        logMethod(args, method) {
          // log.error(error) takes its message from the error: make that explicit, so it is masked too.
          const [first, ...rest] = args as unknown[];
          const expanded = first instanceof Error ? [{ err: first }, rest[0] ?? first.message, ...rest.slice(1)] : args;
          const masked = expanded.map((arg: unknown) => (typeof arg === "string" ? maskSecrets(arg) : arg));
          return method.apply(this, masked as Parameters<typeof method>);
        },
      },
      formatters: { log: (object) => maskDeep(object) as Record<string, unknown> },
      serializers: {
        err: (error: unknown) => maskDeep(error instanceof Error ? pino.stdSerializers.err(error) : error),
      },
    },
    format === "pretty" ? prettyStream(destination) : destination,
  );
}

/**
 * pino-pretty in this process, writing synchronously: a line logged just before
 * process.exit (a start-up failure, a forced stop) is on the terminal when the
 * process is gone. Colours only when the terminal takes them (NO_COLOR is honoured).
 */
function prettyStream(destination: pino.DestinationStream | undefined): pino.DestinationStream {
  return PinoPretty({
    destination: destination ?? 1,
    sync: true,
    translateTime: "SYS:HH:MM:ss.l",
    // Every line has it; a person reading their terminal knows which service they started.
    ignore: "pid,hostname,service",
    singleLine: true,
  });
}
