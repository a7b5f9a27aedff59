// Fastify's own ceiling: the HTTP framework the service runs in, with no
// plugin, hook or schema, answering GET /count's JSON body. Between it and the
// bare node:http ceiling is what the framework costs before any of our code.
import Fastify from "fastify";

const body = '{"count":12000}';
const app = Fastify({ logger: false });
app.get("/count", (_req, reply) => {
  reply.header("content-type", "application/json").send(body);
});
await app.listen({ port: Number(process.env.PORT ?? 0), host: process.env.HOST ?? "127.0.0.1" });
process.once("SIGTERM", () => void app.close().then(() => process.exit(0)));
