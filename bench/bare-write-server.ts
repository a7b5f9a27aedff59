// The floor of an API write on this machine: a bare node:http server doing the
// least any write of ours must do (read the JSON body, one prepared add_order()
// call through a pool of postgres.js connections sized as the app's, SET three new
// tag tokens through iovalkey with auto-pipelining, answer the order as JSON),
// with nothing else of the app: no Fastify, tRPC, zod, metrics or settling.
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { Valkey } from "iovalkey";
import postgres from "postgres";
import { loadConfig } from "../server/config.ts";

const sql = postgres(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres", {
  max: loadConfig().databasePoolSize, // as the app's pool
  onnotice: () => {},
});
const valkey = new Valkey(process.env.VALKEY_URL ?? "redis://127.0.0.1:6379", { enableAutoPipelining: true });
// Under the bench's own key prefix, so that its cleanup removes these too.
const prefix = `${process.env.CACHE_PREFIX ?? "bare-write"}:bare-write`;

interface Body {
  customerid: number;
  netamount: number;
  tax: number;
}

async function write(text: string, key: string): Promise<string> {
  const { customerid, netamount, tax } = JSON.parse(text) as Body;
  const [row] = await sql`SELECT * FROM add_order(${key}, ${"bare"}, ${randomUUID()}::uuid, ${10_000}::integer,
    ${customerid}::integer, ${"2004-06-06"}::date, ${netamount}::numeric, ${tax}::numeric, ${netamount + tax}::numeric)`;
  const token = randomUUID();
  await Promise.all(
    ["orders:all", "orders:year:2004", `orders:customer:${customerid}`].map((tag) =>
      valkey.set(`${prefix}:${tag}`, token, "EX", 60),
    ),
  );
  return JSON.stringify(row);
}

const server = createServer((req, res) => {
  if (req.method !== "POST") {
    res.end("{}"); // readiness probes
    return;
  }
  let text = "";
  req.setEncoding("utf8");
  req.on("data", (chunk: string) => {
    text += chunk;
  });
  req.on("end", () => {
    write(text, String(req.headers["idempotency-key"] ?? randomUUID())).then(
      (body) => {
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
      },
      () => res.writeHead(500).end(),
    );
  });
});
server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1");
process.once("SIGTERM", () =>
  server.close(async () => {
    await sql.end();
    valkey.disconnect();
    process.exit(0);
  }),
);
