import { pino } from "pino";

export type Logger = pino.Logger;

// Paths that could carry secrets if anything ever logs them; pino blanks them.
const redact = ["*.password", "*.databaseUrl", "*.valkeyUrl", "*.authorization", "*.headers.authorization"];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, redact, base: { service: "dellstore-orders" } }, destination);
}
