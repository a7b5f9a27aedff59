import { pino } from "pino";
import { maskDeep, maskSecrets } from "./secrets.ts";

export type Logger = pino.Logger;

// Paths that could carry secrets if anything ever logs them; pino blanks them.
const redact = ["*.password", "*.databaseUrl", "*.valkeyUrl", "*.authorization", "*.headers.authorization"];

/**
 * A JSON logger that never writes a password: besides the paths above, every
 * string of every line (the message, any field, an error's own properties such
 * as ERR_INVALID_URL's `input`) has the passwords of URLs in it masked.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
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
    destination,
  );
}
