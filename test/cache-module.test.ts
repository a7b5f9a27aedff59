// server/cache/ knows no app: a second, tiny tRPC app of its own (its own
// initTRPC and context, a shelf of counts kept in memory) caches one query
// and invalidates it from one mutation, built only on what server/cache/
// exports, served by tRPC's standalone adapter on a real listener, with
// the real Valkey-protocol server under a key prefix of its own.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { createTRPCClient, httpLink } from "@trpc/client";
import { initTRPC, TRPCError } from "@trpc/server";
import { createHTTPServer } from "@trpc/server/adapters/standalone";
import { pino } from "pino";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { z } from "zod";
import { type Cache, createCache, createCaching } from "../server/cache/index.ts";
// The cache still counts its hits and misses in the service's Prometheus metrics.
import { createMetrics } from "../server/metrics.ts";
import { deleteKeys } from "./setup/valkey.ts";
import { cachePrefix, valkeyClient } from "./support/valkey.ts";

// ---- The tiny app: nothing of dellstore-orders' tRPC, routers or context. ----

interface ShelfContext {
  cache: Cache;
  /** Who is asking (the x-clerk header); only clerks may read counts. */
  clerk: string | undefined;
}

const t = initTRPC.context<ShelfContext>().create();
const caching = createCaching(t.procedure, { cache: (ctx) => ctx.cache });

const stock = new Map<string, number>();
/** How many times the query's resolver ran: each is a miss. */
let loads = 0;
const shelfTag = (shelf: string) => `shelf:${shelf}`;

const shelfCount = caching.declarePolicy({
  procedure: "shelf.count",
  input: z.object({ shelf: z.string().min(1) }),
  tags: ({ shelf }) => [shelfTag(shelf)],
  // Typed by this app's own context.
  authorize: (ctx) => {
    if (!ctx.clerk) throw new TRPCError({ code: "UNAUTHORIZED", message: "clerks only" });
  },
});

const shelfRouter = t.router({
  shelf: {
    count: caching.cachedQuery(shelfCount, async ({ input: { shelf } }) => {
      loads++;
      return { shelf, count: stock.get(shelf) ?? 0 };
    }),
    add: t.procedure
      .input(z.object({ shelf: z.string().min(1), items: z.number().int().positive() }))
      .use(caching.invalidates({ tags: (input) => [shelfTag(input.shelf)] }))
      .mutation(({ input: { shelf, items } }) => {
        stock.set(shelf, (stock.get(shelf) ?? 0) + items);
        return { count: stock.get(shelf) ?? 0 };
      }),
  },
});

// ---- Serving it ----

const prefix = cachePrefix();
let cache: Awaited<ReturnType<typeof createCache>>;
let server: ReturnType<typeof createHTTPServer>;
let url: string;
const clientOf = (clerk?: string) =>
  createTRPCClient<typeof shelfRouter>({
    links: [httpLink({ url, headers: clerk === undefined ? {} : { "x-clerk": clerk } })],
  });

beforeAll(async () => {
  cache = createCache(
    {
      valkeyUrl: inject("valkeyUrl"),
      valkeyClusterNodes: undefined,
      cachePrefix: prefix,
      cacheTtlSeconds: 60,
      l1MaxBytes: 0,
    },
    pino({ level: "silent" }),
    createMetrics(),
  );
  expect(await cache.ready(5000)).toBe(true);
  server = createHTTPServer({
    router: shelfRouter,
    createContext: ({ req }) => {
      const clerk = req.headers["x-clerk"];
      return { cache, clerk: typeof clerk === "string" ? clerk : undefined };
    },
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.close();
  await cache?.close();
  await deleteKeys(inject("valkeyUrl"), prefix);
});

it("a miss runs the resolver and stores its answer in Valkey; a hit answers it without the resolver", async () => {
  const clerk = clientOf("ann");
  stock.set("apples", 2);
  const before = loads;
  expect(await clerk.shelf.count.query({ shelf: "apples" })).toEqual({ shelf: "apples", count: 2 });
  expect(loads).toBe(before + 1);
  const valkey = valkeyClient();
  try {
    expect((await valkey.keys(`${prefix}:*`)).filter((key) => key.includes("shelf.count"))).toHaveLength(1);
  } finally {
    valkey.disconnect();
  }
  // Changed behind the cache's back (no mutation, so no invalidation): a hit still answers what was stored.
  stock.set("apples", 99);
  expect(await clerk.shelf.count.query({ shelf: "apples" })).toEqual({ shelf: "apples", count: 2 });
  expect(loads).toBe(before + 1);
});

it("a mutation's declared invalidation makes the next read of its tags fresh, and only of those", async () => {
  const clerk = clientOf("ann");
  stock.set("pears", 5);
  stock.set("plums", 7);
  await clerk.shelf.count.query({ shelf: "pears" });
  await clerk.shelf.count.query({ shelf: "plums" });
  const before = loads;
  expect(await clerk.shelf.add.mutate({ shelf: "pears", items: 3 })).toEqual({ count: 8 });
  expect(await clerk.shelf.count.query({ shelf: "pears" })).toEqual({ shelf: "pears", count: 8 });
  expect(loads).toBe(before + 1); // pears, read again
  stock.set("plums", 70); // not invalidated: plums stays a hit
  expect(await clerk.shelf.count.query({ shelf: "plums" })).toEqual({ shelf: "plums", count: 7 });
  expect(loads).toBe(before + 1);
});

it("runs the policy's check before the cache, on hits too", async () => {
  stock.set("figs", 1);
  await clientOf("ann").shelf.count.query({ shelf: "figs" });
  const before = loads;
  await expect(clientOf().shelf.count.query({ shelf: "figs" })).rejects.toMatchObject({
    data: { code: "UNAUTHORIZED" },
  });
  expect(loads).toBe(before);
});
