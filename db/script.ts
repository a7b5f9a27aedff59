// Entry-point helpers for the project's commands (npm start, the db scripts,
// the benchmarks): flags read one way, `--help` answered before any work, and
// one-line errors with no stack traces or connection strings.
import { type ParseArgsConfig, parseArgs } from "node:util";
import { describeDatabaseFailure } from "../server/database-misconfiguration.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;
type ParsedFlags<T extends Options> = ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true }>
>["values"];

/**
 * The command's flags. `--help` (or `-h`) prints `usage` and exits before
 * anything is done; an unknown flag or a stray word prints what is wrong and
 * the usage, and exits 2.
 */
export function scriptArgs<const T extends Options>(usage: string, options: T): ParsedFlags<T> {
  const args = process.argv.slice(2);
  if (args.some((arg) => arg === "--help" || arg === "-h")) {
    console.log(usage);
    process.exit(0);
  }
  try {
    return parseArgs({ args, options, strict: true }).values;
  } catch (error) {
    console.error(`error: ${(error as Error).message}\n${usage}`);
    process.exit(2);
  }
}

/**
 * Runs a db script's work; a failure is one line on stderr and exit code 1. A
 * connection that failed is said with the server and database it was for (the
 * scripts, like the server, use DATABASE_URL), never with the password.
 */
export async function runScript(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    console.error(`error: ${describeDatabaseFailure(error)}`);
    process.exitCode = 1;
  }
}
