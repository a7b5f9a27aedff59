// Graceful shutdown: in-flight requests finish, new connections are refused, pools close.
import { sql } from "drizzle-orm";
import { expect, it } from "vitest";
import { startTestApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { useProxy } from "./support/tcp-proxy.ts";

const db = useTestDatabase("seeded");
const proxy = useProxy(() => db.url, 5432);

it("lets an in-flight request finish, then refuses new ones and closes the pool", async () => {
  const server = await startTestApp({ DATABASE_URL: proxy.url(db.url) });
  expect((await fetch(`${server.url}/count`)).status).toBe(200);
  proxy.stall(); // holds the next request in flight
  const inFlight = fetch(`${server.url}/count`, { headers: { connection: "close" } });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const closing = server.close();
  await new Promise((resolve) => setTimeout(resolve, 200));
  await expect(fetch(`${server.url}/count`)).rejects.toThrow();
  proxy.restore();
  const res = await inFlight;
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ count: 12_000 });
  await closing;
  await expect(server.app.database.db.execute(sql`SELECT 1`)).rejects.toMatchObject({
    cause: { code: "CONNECTION_ENDED" },
  });
});
