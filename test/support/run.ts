// Runs the project's own commands as a user would type them.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const projectRoot = fileURLToPath(new URL("../..", import.meta.url));

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `command` in the project root with `env` added to a clean environment (no npm_config_* from the test runner). */
export function run(
  command: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<RunResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/.test(key)));
  delete base.DATABASE_URL;
  delete base.PG_SERVICE_URI;
  delete base.VALKEY_URL;
  delete base.VALKEY_SERVICE_URI;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: projectRoot, env: { ...base, ...env }, timeout: timeoutMs });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The last line of a command's output that parses as JSON (npm prints its own banner first). */
export function lastJson(output: string): unknown {
  const lines = output.trim().split("\n").reverse();
  for (const line of lines) {
    try {
      return JSON.parse(line);
    } catch {}
  }
  throw new Error(`no JSON in output:\n${output}`);
}
