// The node:http listener under Fastify (server/http/connections.ts), over real
// sockets: a connection with maxInFlightPerConnection requests in flight is not
// read until answers go out; on close, every response still in flight, on any
// connection, says Connection: close.
import type { ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import { afterEach, expect, it } from "vitest";
import { Listener } from "../server/http/connections.ts";

const limits = {
  maxBodyBytes: 1024,
  headersTimeoutSeconds: 10,
  requestTimeoutSeconds: 30,
  allowedHosts: [],
  shutdownGraceSeconds: 5,
};

let listener: Listener | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await listener?.close(100);
  listener = undefined;
});

/** A listener whose handler holds every response until `answer` is called. */
async function holdingListener(maxInFlightPerConnection: number) {
  listener = await Listener.listen({ port: 0, host: "127.0.0.1", limits, maxInFlightPerConnection });
  const held: ServerResponse[] = [];
  let arrived = () => {};
  listener.serve((_req, res) => {
    held.push(res);
    arrived();
  });
  return {
    listener,
    held,
    /** Resolves once `count` requests have reached the handler in all. */
    until: (count: number) =>
      new Promise<void>((resolve) => {
        arrived = () => held.length >= count && resolve();
        arrived();
      }),
    answer: (res: ServerResponse) => res.writeHead(200, { "content-length": 2 }).end("ok"),
  };
}

/** A raw connection that pipelines `count` GETs at once and collects what comes back. */
async function pipeline(port: number, count: number) {
  const socket = connect(port, "127.0.0.1");
  sockets.push(socket);
  let received = "";
  socket.on("data", (chunk: Buffer) => {
    received += chunk.toString("latin1");
  });
  await new Promise((resolve) => socket.once("connect", resolve));
  const send = (n: number) => socket.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(n));
  send(count);
  return {
    send,
    /** The status lines and Connection headers received so far. */
    responses: () => received.split("HTTP/1.1 ").slice(1),
    closed: new Promise((resolve) => socket.once("close", resolve)),
  };
}

it("stops reading a connection with maxInFlightPerConnection requests in flight, and reads on as answers go out", async () => {
  const { listener, held, until, answer } = await holdingListener(4);
  const client = await pipeline(listener.address.port, 4);
  await until(4);
  // The server's end of the connection is paused: whatever the client sends now is not read.
  expect(held[0]?.socket?.isPaused()).toBe(true);
  client.send(6);
  await new Promise((resolve) => setImmediate(resolve));
  expect(held).toHaveLength(4);
  for (const res of held.slice(0, 4)) answer(res);
  await until(10);
  for (const res of held.slice(4)) answer(res);
  await expect.poll(() => client.responses().length).toBe(10);
  expect(client.responses().every((r) => r.startsWith("200"))).toBe(true);
});

it("on close, answers every response still in flight, on every connection, with Connection: close", async () => {
  const { listener, held, until, answer } = await holdingListener(4);
  const clients = [];
  for (let i = 0; i < 3; i++) clients.push(await pipeline(listener.address.port, 1));
  await until(3);
  const closed = listener.close(5000);
  for (const res of held) answer(res);
  await closed;
  await Promise.all(clients.map((client) => client.closed));
  const all = clients.flatMap((client) => client.responses());
  expect(all).toHaveLength(3);
  for (const response of all) expect(response.toLowerCase()).toContain("connection: close");
});
