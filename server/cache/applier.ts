// How a change travels from COMMIT to every cache: the writer bumps its own
// tags before it answers (middleware.ts); every change, the app's or anyone
// else's, is also logged by triggers in the writing transaction (migration
// 0005), and one applier per cache store, elected with a PostgreSQL advisory
// lock, applies the log: each pass reads the changes committed since its last
// snapshot, bumps each distinct tag once and records the new snapshot in the
// store ("covered"); about once a second it also registers it in PostgreSQL
// (which lets it prune the log) and sweeps expired idempotency keys. Writes made outside the app wake it with a
// payload-less notification; with nothing to wake it, it still passes every
// `passMs`.
//
// Every instance, applier or not:
// - replays the log from the covered snapshot before it uses the store (at
//   start and after every store outage: the breaker's recovery);
// - watches the covered record: while no pass has advanced it for
//   `staleAfterMs` (no applier, or one that can't reach the store), reads
//   bypass the cache, so a write made outside the app is never hidden longer;
// - tries to take the applier's lock every `electionMs`, and at once when a
//   write made outside the app wakes it, so when the applier's process dies
//   (PostgreSQL releases its lock with its session) another takes over within
//   that, and a change made meanwhile waits for no timer.
// Appliers never trust each other's bookkeeping beyond the covered snapshot,
// so two at once (one that lost its session and doesn't know yet) only bump
// some tags twice.
import { randomBytes } from "node:crypto";
import { sql as drizzleSql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { type Database, postgresTls, rowsOf } from "../../db/client.ts";
import * as schema from "../../db/schema.ts";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import { CacheUnavailable } from "./breaker.ts";
import { epochTag } from "./keys.ts";
import type { DirectStore, QueryCache } from "./query-cache.ts";

/** The channel writes made outside the app notify (cache.changed(), migration 0005). */
export const wakeChannel = "cache_wake";
/** How long a store may go without a pass before the log rows it hasn't applied may be pruned. */
export const retentionSeconds = 15 * 60;
const coveredName = "changes:covered";
/** Passes per registration of the covered snapshot in PostgreSQL (with pruning and sweeping). */
const bookkeepingEvery = 10;
/** Tags per store command when a pass has many. */
const bumpChunk = 1000;

export interface ApplierOptions {
  /** The PostgreSQL server's URL, for the applier's own session; undefined on the embedded database. */
  url: string | undefined;
  db: Database;
  cache: QueryCache;
  log: Logger;
  metrics: Metrics;
  /** Which store the cache uses: one applier per store (shared Valkey: its prefix; memory: this process). */
  storeId: string;
  passMs?: number;
  electionMs?: number;
  staleAfterMs?: number;
  /** Test seam: runs after a replay has read the log, before it bumps. */
  afterReplayRead?: () => Promise<void>;
}

/** The covered record: the snapshot every logged change visible in which is applied, and the pass that wrote it. */
interface Covered {
  snapshot: string;
  pass: string;
}

interface Changes {
  snapshot: string;
  tags: string[];
  /** The store's registration is recent: no row it hasn't applied has been pruned. */
  fresh: boolean;
}

/** What the applier needs from PostgreSQL: a session of its own on a server, the one connection when embedded. */
interface ApplierSession {
  /** Whether this session holds (or now took) the store's applier lock. */
  tryLock(storeId: string): Promise<boolean>;
  unlock(storeId: string): Promise<void>;
  changesSince(since: string | undefined, storeId: string): Promise<Changes>;
  afterPass(storeId: string, covered: string): Promise<void>;
  close(): Promise<void>;
}

export class Applier {
  private session: ApplierSession | undefined;
  private connecting: Promise<void> | undefined;
  private stopped = false;
  private leading = false;
  /** The snapshot of this applier's last pass, while it leads. */
  private covered: string | undefined;
  private passes = 0;
  private passTimer: NodeJS.Timeout | undefined;
  private electionTimer: NodeJS.Timeout | undefined;
  private monitorTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private standing = false;
  private again = false;
  /** Until when this instance doesn't stand for election (it stepped down: it couldn't reach the store). */
  private abstainUntil = 0;
  private storeFailingSince: number | undefined;
  /** The covered record as last read (undefined: no baseline yet, at start or after an outage). */
  private lastSeen: string | null | undefined;
  private lastSeenAt = 0;
  private fresh = false;
  private readonly instance = randomBytes(6).toString("base64url");

  constructor(private readonly options: ApplierOptions) {
    const { cache } = options;
    cache.suspend("changes", "no applier pass seen yet");
    cache.setRecovery((direct) => this.replay(direct));
  }

  /** "up" while passes are seen: changes made outside the app reach the cache. */
  get state(): "up" | "down" {
    return this.fresh ? "up" : "down";
  }

  /** Whether this instance is the store's applier now. */
  get isApplier(): boolean {
    return this.leading;
  }

  private get passMs(): number {
    return this.options.passMs ?? 100;
  }

  private get staleAfterMs(): number {
    return this.options.staleAfterMs ?? 5000;
  }

  start(): void {
    this.lastSeenAt = performance.now();
    void this.elect();
    this.monitorTimer = setInterval(() => void this.watch(), Math.min(250, this.staleAfterMs / 4)).unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.passTimer);
    clearTimeout(this.electionTimer);
    clearInterval(this.monitorTimer);
    await this.running?.catch(() => {});
    await this.session?.close();
  }

  /**
   * The breaker's recovery, on every instance: bumps every change the covered
   * snapshot doesn't include (all of them, if there is none or the log may
   * have been pruned past it), trusting nothing this instance did before.
   */
  private async replay(direct: DirectStore): Promise<void> {
    const { db, storeId, log } = this.options;
    const covered = parseCovered(await direct.get(coveredName));
    if (!covered) {
      await direct.bump([epochTag]);
      log.info("no record of which changes the cache has seen: retired every entry");
      return;
    }
    const changes = await changesSince(db, covered.snapshot, storeId);
    await this.options.afterReplayRead?.();
    if (!changes.fresh) {
      await direct.bump([epochTag]);
      log.info("no applier has passed within the change log's retention: retired every entry");
      return;
    }
    await bumpAll(direct, changes.tags);
    if (changes.tags.length > 0) log.info({ tags: changes.tags.length }, "replayed the changes the cache missed");
  }

  /** Every instance: is the covered record advancing? If not, reads bypass the cache until it does. */
  private async watch(): Promise<void> {
    const { cache, metrics, log } = this.options;
    let seen: string | null;
    try {
      seen = await cache.viaBreaker.get(coveredName);
    } catch {
      // The store is down (reads bypass it anyway): staleness is judged again from the next answer on.
      this.lastSeen = undefined;
      return;
    }
    const now = performance.now();
    if (this.lastSeen === undefined) {
      // A baseline (at start, after an outage): only a change from it shows a pass.
      this.lastSeen = seen;
      this.lastSeenAt = now;
      return;
    }
    if (seen !== this.lastSeen && seen !== null) {
      this.lastSeen = seen;
      this.passSeen(now);
      return;
    }
    if (this.fresh && now - this.lastSeenAt > this.staleAfterMs) {
      this.fresh = false;
      metrics.changesUp.set(0);
      metrics.changesOutages.inc();
      cache.suspend("changes", "no applier pass");
      log.warn(
        { staleAfterMs: this.staleAfterMs },
        "no applier has passed lately: the cache is bypassed until one does",
      );
    }
  }

  /** A pass advanced the covered record (seen in the store, or made here). */
  private passSeen(now: number): void {
    const { cache, metrics, log } = this.options;
    this.lastSeenAt = Math.max(this.lastSeenAt, now);
    if (this.fresh) return;
    this.fresh = true;
    metrics.changesUp.set(1);
    cache.resume("changes");
    log.info("changes reach the cache: an applier passes");
  }

  /** Stands for election: takes the lock if nobody holds it, then leads until its session ends. */
  private async elect(): Promise<void> {
    await this.stand();
    if (!this.stopped) {
      this.electionTimer = setTimeout(() => void this.elect(), this.options.electionMs ?? 250).unref();
    }
  }

  /** One attempt at the lock (one at a time). */
  private async stand(): Promise<void> {
    if (this.stopped || this.standing || performance.now() < this.abstainUntil) return;
    this.standing = true;
    try {
      const session = await this.connect();
      if (!this.leading && (await session.tryLock(this.options.storeId))) this.lead();
    } catch (error) {
      this.lose(error);
    } finally {
      this.standing = false;
    }
  }

  private lead(): void {
    const { log, metrics } = this.options;
    this.leading = true;
    this.covered = undefined;
    metrics.applier.set(1);
    log.info("this instance is the change applier");
    this.schedule(0);
  }

  /** The session is gone (or failing): stop leading; the next election reconnects. */
  private lose(error: unknown): void {
    const { log, metrics } = this.options;
    const session = this.session;
    this.session = undefined;
    void session?.close().catch(() => {});
    if (this.leading) {
      this.leading = false;
      metrics.applier.set(0);
      log.warn({ reason: error instanceof Error ? error.message : String(error) }, "no longer the change applier");
    }
  }

  private connect(): Promise<ApplierSession> {
    if (this.session) return Promise.resolve(this.session);
    this.connecting ??= (async () => {
      const { url, db } = this.options;
      if (!url) {
        this.session = embeddedSession(db);
        return;
      }
      // A late close of a session already replaced must not take its successor down.
      const mine: { session?: ApplierSession } = {};
      mine.session = await serverSession(
        url,
        () => this.wake(),
        (reason) => {
          if (mine.session && this.session === mine.session) this.lose(new Error(reason));
        },
      );
      this.session = mine.session;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting.then(() => {
      if (!this.session) throw new Error("no session");
      return this.session;
    });
  }

  /** A write made outside the app committed: pass now (or right after the running pass). */
  private wake(): void {
    this.options.metrics.wakes.inc();
    // Every instance hears writes made outside the app: one that isn't the applier stands at once, so a
    // change made while the applier is gone (stopped, killed) waits for no election timer.
    if (!this.leading) void this.stand();
    else if (this.running) this.again = true;
    else this.schedule(0);
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.passTimer);
    if (this.stopped || !this.leading) return;
    this.passTimer = setTimeout(() => {
      this.running = this.pass().finally(() => {
        this.running = undefined;
        const again = this.again;
        this.again = false;
        this.schedule(again ? 0 : this.passMs);
      });
    }, delayMs).unref();
  }

  private async pass(): Promise<void> {
    const { cache, storeId, log, metrics } = this.options;
    const session = this.session;
    if (!session || !this.leading) return;
    const stop = metrics.applierPassDuration.startTimer();
    try {
      const store = cache.viaBreaker;
      const since = this.covered ?? parseCovered(await store.get(coveredName))?.snapshot;
      const changes = await session.changesSince(since, storeId);
      if (since === undefined || !changes.fresh) {
        // Nothing says which changes the store has seen: retire everything once, then follow the log.
        await store.bump([epochTag]);
        log.info("the change applier found no covered snapshot it can trust: retired every entry");
      } else {
        await bumpAll(store, changes.tags);
      }
      this.passes++;
      const covered: Covered = { snapshot: changes.snapshot, pass: `${this.instance}.${this.passes}` };
      await store.set(coveredName, JSON.stringify(covered), 2 * retentionSeconds);
      // The registration, pruning and sweeping need no haste: about once a second, off the wake-up's path.
      if (this.passes % bookkeepingEvery === 1) await session.afterPass(storeId, changes.snapshot);
      this.covered = changes.snapshot;
      this.storeFailingSince = undefined;
      this.passSeen(performance.now());
      metrics.applierPasses.inc();
      stop();
    } catch (error) {
      if (!(error instanceof CacheUnavailable)) {
        this.lose(error);
        return;
      }
      // The store is unreachable from here: after a while, let an instance that reaches it lead.
      const now = performance.now();
      this.storeFailingSince ??= now;
      if (now - this.storeFailingSince > this.staleAfterMs / 2) await this.stepDown(session);
    }
  }

  private async stepDown(session: ApplierSession): Promise<void> {
    const { log, metrics, storeId } = this.options;
    this.leading = false;
    this.storeFailingSince = undefined;
    metrics.applier.set(0);
    // Long enough for an instance that reaches the store to take the lock; short, if none does.
    this.abstainUntil = performance.now() + this.staleAfterMs / 2;
    log.warn("the change applier can't reach the cache store: stepping down for another instance");
    await session.unlock(storeId).catch((error: unknown) => this.lose(error));
  }
}

function parseCovered(value: string | null): Covered | undefined {
  if (value === null) return undefined;
  try {
    const parsed = JSON.parse(value) as Partial<Covered>;
    return typeof parsed.snapshot === "string" && typeof parsed.pass === "string"
      ? { snapshot: parsed.snapshot, pass: parsed.pass }
      : undefined;
  } catch {
    return undefined;
  }
}

/** Bumps the tags, the epoch alone if they name it; never retires everything for being many. */
async function bumpAll(store: DirectStore, tags: readonly string[]): Promise<void> {
  if (tags.includes(epochTag)) {
    await store.bump([epochTag]);
    return;
  }
  for (let i = 0; i < tags.length; i += bumpChunk) await store.bump(tags.slice(i, i + bumpChunk));
}

/** The changes since `since` (none, if undefined: then only a snapshot taken now). */
async function changesSince(db: Database, since: string | undefined, storeId: string): Promise<Changes> {
  const [row] = rowsOf<Changes>(
    await db.execute(drizzleSql`SELECT snapshot, to_json(tags) AS tags, fresh FROM cache.changes_since(
      coalesce(${since ?? null}::pg_snapshot, pg_current_snapshot()), ${storeId},
      make_interval(secs => ${retentionSeconds}))`),
  );
  if (!row) throw new Error("cache.changes_since() returned no row");
  return row;
}

async function afterPass(db: Database, storeId: string, covered: string): Promise<void> {
  await db.execute(drizzleSql`SELECT pruned, swept FROM cache.after_pass(${storeId}, ${covered}::pg_snapshot,
    make_interval(secs => ${retentionSeconds}))`);
}

/** The embedded database: one process, the only writer, so it always leads and nothing wakes it. */
function embeddedSession(db: Database): ApplierSession {
  return {
    tryLock: async () => true,
    unlock: async () => {},
    changesSince: (since, storeId) => changesSince(db, since, storeId),
    afterPass: (storeId, covered) => afterPass(db, storeId, covered),
    close: async () => {},
  };
}

// postgres.js delivers a connection's notifications to this (untyped) option; it is what its own listen() uses.
type ListenerOptions = postgres.Options<Record<string, postgres.PostgresType>> & {
  onnotify: (channel: string, payload: string) => void;
};

/**
 * A session of the applier's own: it holds the advisory lock (released by
 * PostgreSQL when the session ends, however the process died) and listens for
 * wake-ups. Each query is bounded, so a hung server doesn't hold a pass.
 */
async function serverSession(
  url: string,
  onWake: () => void,
  onLost: (reason: string) => void,
): Promise<ApplierSession> {
  const tls = postgresTls(url);
  const sql: postgres.Sql = postgres(tls.url, {
    ...(tls.ssl ? { ssl: tls.ssl } : {}),
    max: 1,
    idle_timeout: undefined,
    max_lifetime: null,
    connect_timeout: 2,
    fetch_types: false,
    onnotice: () => {},
    connection: { application_name: "dellstore-orders-applier", statement_timeout: 10_000 },
    onclose: () => onLost("the applier's session closed"),
    onnotify: (channel) => {
      if (channel === wakeChannel) onWake();
    },
  } as ListenerOptions);
  const db: Database = drizzle(sql, { schema });
  const lockKey = (storeId: string) => `dellstore-orders applier ${storeId}`;
  let listening = false;
  return {
    tryLock: async (storeId) => {
      if (!listening) {
        await sql.unsafe(`LISTEN ${wakeChannel}`);
        listening = true;
      }
      const [row] = await sql<{ locked: boolean }[]>`
        SELECT pg_try_advisory_lock(hashtextextended(${lockKey(storeId)}, 0)) AS locked`;
      return row?.locked === true;
    },
    unlock: async (storeId) => {
      await sql`SELECT pg_advisory_unlock(hashtextextended(${lockKey(storeId)}, 0))`;
    },
    changesSince: (since, storeId) => changesSince(db, since, storeId),
    afterPass: (storeId, covered) => afterPass(db, storeId, covered),
    close: () => sql.end({ timeout: 1 }),
  };
}
