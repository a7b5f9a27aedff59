// One format for everything the server says, start-up failures and bad
// configuration included: pino-pretty's lines on a terminal, JSON lines where
// logs are collected (a pipe, a file), LOG_FORMAT to choose. Terminals are real:
// `script` gives the command a pseudo-terminal, tmux a whole one to press Ctrl-C in.
import { spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { stripVTControlCharacters } from "node:util";
import { describe, expect, it } from "vitest";
import { useTestDatabase } from "./support/database.ts";
import { lastJson, projectRoot, run } from "./support/run.ts";
import { freePort } from "./support/server-process.ts";

/** `command` on a pseudo-terminal (util-linux script): what a person sees, colours and all. */
const onTerminal = (command: string, env: Record<string, string>) =>
  run("script", ["-qec", command, "/dev/null"], { TERM: "xterm-256color", ...env });

/** The text without its colours and carriage returns. */
const plain = (text: string) => stripVTControlCharacters(text).replace(/\r/g, "");

const badPort = "invalid configuration: PORT must be a port number (1–65535, or 0 for any free one), got 'abc'";

describe("a configuration error", () => {
  it("is a pretty FATAL line on a terminal, in the user's words", async () => {
    // npm's spinner, drawn and erased in place on a slow start, would prefix the line in the transcript.
    const result = await onTerminal("npm start", { PORT: "abc", npm_config_progress: "false" });
    const said = plain(result.stdout);
    expect(said).toMatch(new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\] FATAL: ${literal(badPort)}$`, "m"));
    expect(said).not.toContain('{"level"');
    expect(said).not.toMatch(/Invalid input|expected number|received NaN/);
  });

  it("is a JSON line (level 60) through a pipe, as every other log line", async () => {
    const result = await run("npm", ["start"], { PORT: "abc" });
    expect(result.code).toBe(1);
    expect(lastJson(result.stdout)).toMatchObject({ level: 60, msg: badPort });
  });

  it("follows LOG_FORMAT: json on a terminal, pretty through a pipe", async () => {
    const json = plain((await onTerminal("node dist/server/main.js", { PORT: "abc", LOG_FORMAT: "json" })).stdout);
    expect(JSON.parse(json.trim())).toMatchObject({ level: 60, msg: badPort });
    const pretty = await run("node", ["dist/server/main.js"], { PORT: "abc", LOG_FORMAT: "pretty" });
    expect(pretty.stdout).toMatch(new RegExp(`^\\[[\\d:.]+\\] FATAL: ${literal(badPort)}\\n$`));
  });

  it("names LOG_FORMAT itself when it is neither", async () => {
    // Were it taken, the server would start and serve: bounded, on a free port, on a database nothing answers for.
    const result = await run(
      "node",
      ["dist/server/main.js"],
      {
        LOG_FORMAT: "xml",
        PORT: String(await freePort()),
        DATABASE_URL: `postgres://x@127.0.0.1:${await freePort()}/x`,
      },
      10_000,
    );
    expect(result.code).toBe(1);
    expect(lastJson(result.stdout)).toMatchObject({
      msg: "invalid configuration: LOG_FORMAT must be pretty or json (unset: pretty on a terminal, json otherwise), got 'xml'",
    });
  });
});

describe("a start-up failure", () => {
  const db = useTestDatabase("seeded");

  it("is the same pretty FATAL line on a terminal", async () => {
    const taken = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => taken.listen(port, "127.0.0.1", resolve));
    try {
      const result = await onTerminal("node dist/server/main.js", { DATABASE_URL: db.url, PORT: String(port) });
      expect(plain(result.stdout)).toMatch(
        new RegExp(`^\\[[\\d:.]+\\] FATAL: start-up failed: 127\\.0\\.0\\.1:${port} is already in use: `, "m"),
      );
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});

describe("`npm start` in a terminal (tmux)", () => {
  const db = useTestDatabase("seeded");

  it("logs pretty lines, and Ctrl-C stops it: `stopped`, exit 0", async () => {
    if (spawnSync("tmux", ["-V"]).status !== 0) {
      throw new Error("This test presses Ctrl-C in a real terminal and needs tmux on PATH: apt install tmux");
    }
    const session = `dellstore-${process.pid}-${Date.now()}`;
    const port = await freePort();
    // A tmux server of the test's own (-L), started with the environment `run` gives commands (no npm_*
    // variables of the test runner's, no DATABASE_URL but the one set here).
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !/^(npm_|DATABASE_URL|PG_SERVICE_URI|VALKEY_)/.test(key)),
    );
    const tmux = (...args: string[]) => spawnSync("tmux", ["-L", session, ...args], { encoding: "utf8", env });
    const screen = () => tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", session).stdout;
    const started = tmux(
      "new-session",
      "-d",
      "-s",
      session,
      "-x",
      "250",
      "-y",
      "50",
      "-c",
      projectRoot,
      "-e",
      `DATABASE_URL=${db.url}`,
      "-e",
      `PORT=${port}`,
      "-e",
      "API_TOKEN=a-test-token-of-enough-length",
      // The exit status stays on the screen after npm is gone.
      "npm start; echo exit=$?; sleep 600",
    );
    expect(started.status, started.stderr).toBe(0);
    try {
      const until = async (pattern: RegExp) => {
        for (let i = 0; i < 300 && !pattern.test(screen()); i++) await new Promise((r) => setTimeout(r, 100));
        return screen();
      };
      expect(await until(/INFO: listening on /)).toMatch(/^\[[\d:.]+\] INFO: listening on http:\/\/127\.0\.0\.1:\d+/m);
      tmux("send-keys", "-t", session, "C-c");
      const after = await until(/^exit=\d+/m);
      expect(after).toMatch(/INFO: shutting down: finishing in-flight requests/);
      expect(after).toMatch(/INFO: stopped$/m);
      expect(after).toMatch(/^exit=0$/m);
      expect(after).not.toContain('{"level"');
    } finally {
      tmux("kill-server");
    }
  }, 60_000);
});

function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
