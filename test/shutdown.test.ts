// Graceful shutdown: in-flight requests finish and say Connection: close, idle
// connections close at once, new connections are refused, the pools close,
// and close() resolves as soon as the last request is answered.
import { once } from "node:events";
import { Agent, request } from "node:http";
import { sql } from "drizzle-orm";
import { expect, it } from "vitest";
import { startTestApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { useProxy } from "./support/tcp-proxy.ts";

const db = useTestDatabase("seeded");
const proxy = useProxy(() => db.url, 5432);

function get(url: string, agent: Agent) {
  return new Promise<{ status: number; connection: string | undefined; body: string }>((resolve, reject) => {
    const req = request(`${url}/count`, { agent, headers: { "cache-control": "no-store" } }, (res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

it("lets in-flight requests finish with Connection: close, closes idle ones, refuses new ones, then closes the pool", async () => {
  const server = await startTestApp({ DATABASE_URL: proxy.url(db.url), SHUTDOWN_GRACE_SECONDS: "60" });
  const busy = new Agent({ keepAlive: true, maxSockets: 1 });
  const idle = new Agent({ keepAlive: true, maxSockets: 1 });
  expect((await get(server.url, busy)).connection).toBe("keep-alive");
  expect((await get(server.url, idle)).connection).toBe("keep-alive");
  const [idleSocket] = Object.values(idle.freeSockets).flat();
  expect(idleSocket).toBeDefined();
  const idleClosed = once(idleSocket as NodeJS.EventEmitter, "close");

  proxy.stall(); // holds the next request in flight
  const arrived = once(server.app.server, "request");
  const inFlight = get(server.url, busy);
  await arrived;
  let closed = false;
  const closing = server.close().then(() => {
    closed = true;
  });
  await idleClosed; // the idle keep-alive connection goes at once
  expect(server.app.server.listening).toBe(false);
  await expect(fetch(`${server.url}/count`)).rejects.toThrow();
  expect(closed).toBe(false); // still waiting for the stalled request, well within the grace period

  proxy.restore();
  const res = await inFlight;
  expect(res.status).toBe(200);
  expect(res.connection).toBe("close");
  expect(JSON.parse(res.body)).toEqual({ count: 12_000 });
  await closing; // as soon as the last request is answered, not after the 60 s grace period
  await expect(server.app.database.db.execute(sql`SELECT 1`)).rejects.toMatchObject({
    cause: { code: "CONNECTION_ENDED" },
  });
  busy.destroy();
  idle.destroy();
});
