// Entry-point wrapper for the db scripts: one-line errors, no stack traces or
// connection strings, and a non-zero exit.
export async function runScript(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}
