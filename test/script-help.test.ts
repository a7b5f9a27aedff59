// Every npm script answers `--help` with its usage and does none of its work:
// the database and server URLs point at a closed port, so a script that went
// on to migrate, seed, benchmark or call the server would fail instead.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import { projectRoot, run } from "./support/run.ts";
import { freePort } from "./support/server-process.ts";

const { scripts } = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
};
// `dev` is `node --watch`, which waits for file changes after any exit, --help's included.
const answering = Object.keys(scripts).filter((name) => name !== "dev" && name !== "prepare");

let closed = "";
beforeAll(async () => {
  closed = `127.0.0.1:${await freePort()}`;
});

it.each(answering)("`npm run %s -- --help` prints its usage and does nothing else", async (name) => {
  const result = await run("npm", ["run", "-s", name, "--", "--help"], {
    DATABASE_URL: `postgres://postgres@${closed}/nowhere`,
    VALKEY_URL: `redis://${closed}`,
    SERVER_URL: `http://${closed}`,
  });
  expect(result.code, result.stderr).toBe(0);
  // tsc says "COMMON COMMANDS"; the others, "usage".
  expect(result.stdout).toMatch(/usage|common commands/i);
  expect(result.stdout + result.stderr).not.toMatch(
    /ECONNREFUSED|^migrated |^generated customers|Test Files|vitest: \d/m,
  );
});
