// The floor of any hit path: a bare node:http server that makes one iovalkey
// round trip (an MGET of three keys, as a hit's tag tokens and entry) per request.
import { createServer } from "node:http";
import { Valkey } from "iovalkey";

const valkey = new Valkey(process.env.VALKEY_URL ?? "redis://127.0.0.1:6379", { enableAutoPipelining: true });
const prefix = `bare-valkey-${process.pid}`;
await valkey.mset(`${prefix}:a`, "1", `${prefix}:b`, "2", `${prefix}:c`, '{"count":12000}');
const server = createServer((_req, res) => {
  valkey.mget(`${prefix}:a`, `${prefix}:b`, `${prefix}:c`).then((values) => {
    const body = values[2] as string;
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1");
process.once("SIGTERM", () =>
  server.close(async () => {
    await valkey.del(`${prefix}:a`, `${prefix}:b`, `${prefix}:c`);
    valkey.disconnect();
    process.exit(0);
  }),
);
