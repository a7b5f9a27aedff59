// The port is bound before anything shared is touched: a start that fails
// there (the port is in use) has not connected to PostgreSQL or Valkey at all.
import { once } from "node:events";
import { createServer, type Server } from "node:net";
import { afterEach, expect, it } from "vitest";
import { startTestApp } from "./support/app.ts";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

/** A TCP server that only counts who connects to it. */
async function recorder(): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("no port");
  return { port: address.port, connections: () => connections };
}

it("fails on a port in use without connecting to the database or Valkey", async () => {
  const taken = await recorder();
  const database = await recorder();
  const valkey = await recorder();
  await expect(
    startTestApp({
      PORT: String(taken.port),
      DATABASE_URL: `postgres://postgres@127.0.0.1:${database.port}/nothing`,
      VALKEY_URL: `redis://127.0.0.1:${valkey.port}`,
    }),
  ).rejects.toMatchObject({ code: "EADDRINUSE" });
  expect(database.connections()).toBe(0);
  expect(valkey.connections()).toBe(0);
});
