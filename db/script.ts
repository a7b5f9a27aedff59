// Entry-point wrapper for the db scripts: one-line errors, no stack traces or
// connection strings, and a non-zero exit.
import { describeConnectionError } from "./client.ts";

export async function runScript(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    console.error(`error: ${describeConnectionError(error)}`);
    process.exitCode = 1;
  }
}
