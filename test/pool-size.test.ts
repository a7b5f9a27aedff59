// DATABASE_POOL_SIZE caps the transactions one instance runs at once: with a
// table locked, twelve uncached reads of distinct customers at once leave exactly that many of the
// app's connections waiting in PostgreSQL (the rest wait in the app), and every
// read is answered once the lock goes.
import { describe, expect, it } from "vitest";
import { startTestApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { useFixture } from "./support/fixture.ts";
import { cachePrefix } from "./support/valkey.ts";

const db = useTestDatabase("seeded");
const poolSize = 3;
const app = useFixture(
  () =>
    startTestApp({
      DATABASE_URL: db.url,
      DATABASE_POOL_SIZE: String(poolSize),
      CACHE_PREFIX: cachePrefix(),
    }),
  (started) => started.close(),
);

const waitingOnLock = async () => {
  const [row] = await db.sql<{ waiting: number }[]>`
    SELECT count(*)::integer AS waiting FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'dellstore-orders' AND wait_event_type = 'Lock'`;
  return row?.waiting;
};

describe("DATABASE_POOL_SIZE", () => {
  it("runs at most that many statements at once; the rest wait in the app and are answered", async () => {
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let locked = () => {};
    const isLocked = new Promise<void>((resolve) => {
      locked = resolve;
    });
    const holder = db.sql.begin(async (tx) => {
      await tx`LOCK TABLE customer_order_stats IN ACCESS EXCLUSIVE MODE`;
      locked();
      await released;
    });
    await isLocked;
    // Distinct customers: identical reads would share one load.
    const reads = Array.from({ length: 12 }, (_, i) =>
      fetch(`${app.url}/count?customerid=${i + 1}`, { headers: { "cache-control": "no-store" } }),
    );
    try {
      await expect.poll(waitingOnLock, { timeout: 5000 }).toBe(poolSize);
    } finally {
      release();
      await holder;
    }
    const answers = await Promise.all(reads);
    expect(answers.map((res) => res.status)).toEqual(Array(12).fill(200));
  });
});
