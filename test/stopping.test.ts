// Stopping as people stop it: Ctrl-C under `npm start` (SIGINT to the whole
// process group, and npm forwards it once more), signals repeated during a
// drain, a supervisor's SIGTERM; and what the log says while Valkey is away.
// Each server is a real process running what ships (dist/, built by the
// global setup), in a process group of its own.
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { useTestDatabase } from "./support/database.ts";
import { startLocalValkey } from "./support/local-valkey.ts";
import { freePort, type ServerProcess, startServerProcess } from "./support/server-process.ts";
import { useProxy } from "./support/tcp-proxy.ts";
import { cachePrefix } from "./support/valkey.ts";

const compiled: [string, ...string[]] = ["node", "dist/server/main.js"];
// Without it every start warns that writes are open, which would hide the warnings these tests look for.
const apiToken = "a-test-token-of-enough-length";

interface Line {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** The server's JSON log lines (stdout is a pipe, so it logs JSON), without npm's banner. */
const lines = (server: ServerProcess): Line[] =>
  server
    .output()
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Line);

const exitOf = async (server: ServerProcess) => {
  const { child } = server;
  if (child.exitCode === null && child.signalCode === null) await once(child, "exit");
  return { code: child.exitCode, signal: child.signalCode };
};

/** Whatever of the server's process group is left, killed (a test that failed midway leaves none behind). */
const kill = (server: ServerProcess) => {
  try {
    process.kill(-(server.child.pid as number), "SIGKILL");
  } catch {} // gone already
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("Ctrl-C under `npm start` on the embedded database", () => {
  it("drains, logs `stopped`, exits 0 and leaves no lock in DATA_DIR", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "dellstore-ctrl-c-"));
    try {
      const server = await startServerProcess({ DATA_DIR: dataDir, API_TOKEN: apiToken });
      expect(existsSync(join(dataDir, "server.lock"))).toBe(true);
      // As a terminal's Ctrl-C: SIGINT to every process of the group, npm and the server; npm then
      // forwards its own to the server, which so gets two.
      const code = await server.stop("SIGINT");
      expect(server.output()).toContain('"msg":"stopped"');
      expect(code).toBe(0);
      expect(existsSync(join(dataDir, "server.lock"))).toBe(false);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000); // PGlite's first start seeds it: slow on a loaded machine
});

describe("signals repeated during a drain", () => {
  const db = useTestDatabase("seeded");
  // Between the server and PostgreSQL: stalled, it holds a request in flight, so the drain has to wait.
  const proxy = useProxy(() => db.url, 5432);

  /** A server with one request held in flight (PostgreSQL stalled), and that request's answer to come. */
  const withRequestInFlight = async () => {
    proxy.restore();
    const server = await startServerProcess(
      { DATABASE_URL: proxy.url(db.url), API_TOKEN: apiToken, SHUTDOWN_GRACE_SECONDS: "60" },
      compiled,
    );
    // One connection to PostgreSQL is made and answering before the stall.
    expect((await fetch(`${server.url}/count`, { headers: { "cache-control": "no-store" } })).status).toBe(200);
    proxy.stall();
    const answer = fetch(`${server.url}/count?customerid=7`, { headers: { "cache-control": "no-store" } }).then(
      async (res) => ({ status: res.status, body: await res.text() }),
      (error: unknown) => ({ status: 0, body: String(error) }),
    );
    await sleep(500); // the request has reached the server and waits on PostgreSQL
    return { server, answer };
  };

  it("a second SIGINT doesn't cut the drain short: the request in flight is answered, then `stopped`", async () => {
    const { server, answer } = await withRequestInFlight();
    try {
      const pid = server.child.pid as number;
      process.kill(pid, "SIGINT");
      await sleep(100);
      process.kill(pid, "SIGINT");
      await sleep(1000);
      expect(server.child.exitCode).toBeNull(); // still draining: the request waits on PostgreSQL
      expect(server.child.signalCode).toBeNull();
      proxy.restore();
      expect(await answer).toEqual({ status: 200, body: expect.stringMatching(/^\{"count":\d+\}$/) });
      expect(await exitOf(server)).toEqual({ code: 0, signal: null });
      const said = lines(server).map((line) => line.msg);
      expect(said).toContain("stopped");
      // The second one is acknowledged, with what a third would do.
      expect(said.filter((msg) => /^shutting down/.test(msg))).toHaveLength(1);
      expect(
        said.some((msg) =>
          /^SIGINT again: still finishing the requests in flight \(a third signal stops at once\)$/.test(msg),
        ),
      ).toBe(true);
    } finally {
      proxy.restore();
      kill(server);
    }
  }, 90_000);

  it("a third SIGINT stops at once, without waiting for the request, in one line saying so", async () => {
    const { server, answer } = await withRequestInFlight();
    try {
      const pid = server.child.pid as number;
      for (let i = 0; i < 3; i++) {
        process.kill(pid, "SIGINT");
        await sleep(100);
      }
      const exit = await Promise.race([exitOf(server), sleep(5000).then(() => "still running")]);
      expect(exit).toEqual({ code: 130, signal: null }); // 128 + SIGINT, as a shell reports it
      expect((await answer).status).toBe(0); // its connection went with the process
      const last = lines(server).at(-1);
      expect(last?.level).toBe(40);
      expect(last?.msg).toMatch(
        /^a third signal \(SIGINT\): stopping at once, without finishing the requests in flight/,
      );
      expect(lines(server).map((line) => line.msg)).not.toContain("stopped");
    } finally {
      proxy.restore();
      kill(server);
    }
  }, 90_000);
});

describe("a clean SIGTERM with PostgreSQL and Valkey", () => {
  const db = useTestDatabase("seeded");

  // The cache's own close at shutdown once tripped the breaker ("cache unavailable") and made the
  // stopped applier step down ("stepping down"), both warnings.
  it("logs no warning or error, from `shutting down` to `stopped`", async () => {
    const server = await startServerProcess(
      {
        DATABASE_URL: db.url,
        VALKEY_URL: inject("valkeyUrl"),
        CACHE_PREFIX: cachePrefix(),
        API_TOKEN: apiToken,
      },
      compiled,
    );
    try {
      // It is the change applier (its session open) and has cached something when it is stopped.
      for (let i = 0; i < 100 && !lines(server).some((l) => l.msg === "this instance is the change applier"); i++)
        await sleep(100);
      expect(lines(server).map((l) => l.msg)).toContain("this instance is the change applier");
      expect((await fetch(`${server.url}/count`)).status).toBe(200);
      expect((await fetch(`${server.url}/count`)).status).toBe(200);
      expect(await server.stop("SIGTERM")).toBe(0);
      const all = lines(server);
      const from = all.findIndex((l) => /^shutting down/.test(l.msg));
      expect(from).toBeGreaterThan(-1);
      expect(all.at(-1)?.msg).toBe("stopped");
      expect(all.slice(from).filter((l) => l.level >= 40)).toEqual([]);
    } finally {
      kill(server);
    }
  }, 90_000);
});

describe("one instance while Valkey is away", () => {
  const db = useTestDatabase("seeded");
  const applierLines = (server: ServerProcess) =>
    lines(server)
      .map((l) => l.msg)
      .filter((msg) => /change applier/.test(msg));

  it("never answering: at most one applier line in 10 s", async () => {
    const server = await startServerProcess(
      {
        DATABASE_URL: db.url,
        VALKEY_URL: `redis://127.0.0.1:${await freePort()}`, // nothing listens there
        CACHE_PREFIX: cachePrefix(),
        API_TOKEN: apiToken,
      },
      compiled,
    );
    try {
      await sleep(10_000);
      expect(applierLines(server).length, applierLines(server).join("\n")).toBeLessThanOrEqual(1);
    } finally {
      expect(await server.stop("SIGTERM")).toBe(0);
    }
  }, 60_000);

  it("stopped for 10 s: one line when it goes, one when it is back, no flapping between", async () => {
    const valkey = await startLocalValkey();
    const server = await startServerProcess(
      { DATABASE_URL: db.url, VALKEY_URL: valkey.url, CACHE_PREFIX: cachePrefix(), API_TOKEN: apiToken },
      compiled,
    );
    try {
      for (let i = 0; i < 100 && applierLines(server).length === 0; i++) await sleep(100);
      expect(applierLines(server)).toEqual(["this instance is the change applier"]);
      await valkey.restart({ downMs: 10_000 });
      // Back: within a few seconds the instance reconnects and leads again.
      for (let i = 0; i < 100 && applierLines(server).length < 3; i++) await sleep(100);
      await sleep(2000); // and says nothing more about it
      const said = applierLines(server);
      expect(said, said.join("\n")).toHaveLength(3);
      expect(said[0]).toBe("this instance is the change applier");
      expect(said[1]).toMatch(/stepping down|no longer the change applier/);
      expect(said[2]).toBe("this instance is the change applier");
    } finally {
      await server.stop("SIGTERM");
      await valkey.stop();
    }
  }, 90_000);
});
