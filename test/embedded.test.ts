// No DATABASE_URL: `npm start` runs on embedded PGlite, migrated and seeded on first start.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "./support/run.ts";
import { freePort, shippedServer, startServerProcess } from "./support/server-process.ts";
import { openSse } from "./support/sse.ts";

let dataDir = "";
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "dellstore-embedded-"));
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

describe("the embedded default", () => {
  it('boots with `npm start`, says so, and answers the seed\'s {"count":12000}', async () => {
    const server = await startServerProcess({ DATA_DIR: dataDir });
    try {
      expect(server.output()).toMatch(/no DATABASE_URL: using embedded PGlite in .*set DATABASE_URL=postgres:/);
      const res = await fetch(`${server.url}/count`);
      expect(await res.text()).toBe('{"count":12000}');
      // Live counts work on PGlite too, pushed by the in-process cache's bumps.
      const live = await openSse(`${server.url}/count/stream?customerid=9999`);
      const before = JSON.parse((await live.waitFor((e) => e.data !== undefined)).data as string).count as number;
      const add = await fetch(`${server.url}/add/`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"orderdate":"2023-03-10","customerid":9999,"netamount":23.0,"tax":2.0}',
      });
      expect(await add.json()).toEqual({ updated: { customer: 9999 } });
      await live.waitFor((e) => e.data === JSON.stringify({ count: before + 1 }));
      live.close();
      expect(await (await fetch(`${server.url}/health`)).json()).toMatchObject({ status: "ok", database: "up" });
    } finally {
      await server.stop();
    }
  }, 120_000); // server processes on PGlite: slow to start on a loaded machine

  it("keeps its data across restarts instead of seeding again, and stops cleanly on SIGTERM", async () => {
    const server = await startServerProcess({ DATA_DIR: dataDir }, shippedServer);
    let code: number | null;
    try {
      expect(await (await fetch(`${server.url}/count`)).json()).toEqual({ count: 12_001 });
      expect(server.output()).not.toContain("seeded the embedded database");
    } finally {
      code = await server.stop();
    }
    expect(code).toBe(0);
    expect(server.output()).toContain('"msg":"stopped"');
  }, 120_000); // server processes on PGlite: slow to start on a loaded machine

  it("refuses a second server on the same DATA_DIR at once, naming the first; a killed server's lock is taken over", async () => {
    const first = await startServerProcess({ DATA_DIR: dataDir }, shippedServer);
    try {
      const second = await run(shippedServer[0], shippedServer.slice(1), {
        DATA_DIR: dataDir,
        PORT: String(await freePort()),
      });
      expect(second.code).toBe(1);
      expect(second.stdout + second.stderr).toContain(
        `the embedded database in ${dataDir} (DATA_DIR) is in use by process ${first.child.pid}`,
      );
      // The first one never noticed.
      expect(await (await fetch(`${first.url}/count`)).json()).toEqual({ count: 12_001 });
    } finally {
      await first.stop("SIGKILL");
    }
    // Killed, it released nothing: the next start takes over its lock and its data.
    const next = await startServerProcess({ DATA_DIR: dataDir }, shippedServer);
    try {
      expect(await (await fetch(`${next.url}/count`)).json()).toEqual({ count: 12_001 });
    } finally {
      await next.stop();
    }
  }, 120_000); // server processes on PGlite: slow to start on a loaded machine
});
