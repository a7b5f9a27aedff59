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
/** The channel an applier announces a pass's covered snapshot on, when a writer waits for one (handOff). */
const appliedChannel = "cache_applied";
/** The payload of a wake-up from a writer waiting for a pass: the next pass announces what it covered. */
const handOffRequest = "hand-off";
/** How long a write whose own bump failed waits for an applier's pass to apply it. */
export const handOffMs = 1000;
/** How long it waits for any pass to be announced at all: none means no applier reaches the store either. */
const handOffQuietMs = 300;
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
  /**
   * The log still holds every change the store's record doesn't show (its
   * registration is recent and the record covers it). When false no tags are
   * read: the store is retired whole, and registered at `snapshot` already.
   */
  complete: boolean;
}

/** What the applier needs from PostgreSQL: a session of its own on a server, the one connection when embedded. */
interface ApplierSession {
  /** Whether this session holds (or now took) the store's applier lock. */
  tryLock(storeId: string): Promise<boolean>;
  unlock(storeId: string): Promise<void>;
  changesSince(since: string | undefined, storeId: string): Promise<Changes>;
  afterPass(storeId: string, covered: string): Promise<void>;
  /** Ends the session holding the store's lock, if another does; whether one was ended. */
  depose(storeId: string): Promise<boolean>;
  /** Wakes every instance's applier session (NOTIFY): one stepped down, another may take over now. */
  wakeOthers(payload?: string): Promise<void>;
  /** Tells every instance which snapshot a pass has just covered in the store. */
  announce(covered: string): Promise<void>;
  /** A snapshot taken now: every write committed before it is visible in it. */
  snapshotNow(): Promise<string>;
  /** Whether every change visible in `b` is visible in `a` (cache.snapshot_covers). */
  covers(a: string, b: string): Promise<boolean>;
  close(): Promise<void>;
}

export class Applier {
  private session: ApplierSession | undefined;
  private connecting: Promise<void> | undefined;
  private stopped = false;
  private leading = false;
  private passes = 0;
  private passTimer: NodeJS.Timeout | undefined;
  private electionTimer: NodeJS.Timeout | undefined;
  private monitorTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private standing = false;
  private again = false;
  /** The covered record as last read (undefined: no baseline yet, at start or after an outage). */
  private lastSeen: string | null | undefined;
  private lastSeenAt = 0;
  private fresh = false;
  /** A writer waits for the next pass's announcement (set by its wake-up, taken by the pass that starts next). */
  private announceRequested = false;
  private readonly announcementWaiters = new Set<(covered: string) => void>();
  private readonly instance = randomBytes(6).toString("base64url");

  constructor(private readonly options: ApplierOptions) {
    const { cache } = options;
    cache.suspend("changes", "no applier pass seen yet");
    cache.setRecovery((direct) => this.replay(direct));
    cache.setHandOff(() => this.handOff());
    // An applier that can't reach the store can't do its duty: it steps down at once, so that an
    // instance that reaches it leads, and stands again once its own store calls work (after a replay).
    cache.onStatusChange((status) => {
      if (status === "down") void this.stepDown("the cache store is unreachable from this instance");
      else void this.stand();
    });
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

  /** How long no pass may be seen, while the lock is held, before its holder's session is ended. */
  private get deposeAfterMs(): number {
    return this.staleAfterMs / 2;
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
    const session = this.session;
    if (this.leading && session) {
      // Another instance takes over now, not at its next election: a rolling restart leaves no gap.
      await session
        .unlock(this.options.storeId)
        .then(() => session.wakeOthers())
        .catch(() => {});
    }
    await session?.close();
  }

  /**
   * A write whose own bump could not reach the store (this instance lost it)
   * while others may still read it: wakes the applier (which passes at once
   * and announces what it covered) and waits until a pass covers the write's
   * commit. It gives up at `handOffMs`, or when no pass is announced at all
   * within `handOffQuietMs` (no applier reaches the store either, so neither
   * does any reader: every instance's cache is bypassed).
   */
  private async handOff(): Promise<boolean> {
    // The embedded database has one process, whose own cache stays closed until a replay: no reader to wait for.
    if (!this.options.url || this.stopped) return false;
    const { metrics, log } = this.options;
    const started = performance.now();
    let announced = false;
    let covered = false;
    let timer: NodeJS.Timeout | undefined;
    let onAnnounce: ((snapshot: string) => void) | undefined;
    const wait = (async () => {
      const session = await this.connect();
      // Taken after the write's commit was acknowledged, so it shows the write.
      const mine = await session.snapshotNow();
      await new Promise<void>((resolve) => {
        onAnnounce = (snapshot) => {
          announced = true;
          void session.covers(snapshot, mine).then(
            (yes) => {
              if (yes) {
                covered = true;
                resolve();
              }
            },
            () => {},
          );
        };
        this.announcementWaiters.add(onAnnounce);
        session.wakeOthers(handOffRequest).catch(() => resolve());
      });
    })();
    const giveUp = new Promise<void>((resolve) => {
      const check = () => {
        const waited = performance.now() - started;
        if (waited >= handOffMs || (!announced && waited >= handOffQuietMs)) resolve();
        else timer = setTimeout(check, 25);
      };
      timer = setTimeout(check, 25);
    });
    try {
      await Promise.race([wait, giveUp]);
    } catch {
      // No session: nothing to wait on.
    } finally {
      clearTimeout(timer);
      if (onAnnounce) this.announcementWaiters.delete(onAnnounce);
    }
    metrics.handOffs.inc({ outcome: covered ? "applied" : announced ? "late" : "no applier" });
    if (!covered && announced) {
      log.warn(
        { waitedMs: Math.round(performance.now() - started) },
        "a write's invalidation waited for the change applier in vain: it answers anyway",
      );
    }
    return covered;
  }

  /** A pass's announcement, heard on this instance's session. */
  private heard(covered: string): void {
    for (const waiter of this.announcementWaiters) waiter(covered);
  }

  /**
   * The breaker's recovery, on every instance: bumps every change the covered
   * snapshot doesn't include (all of them, if there is none or the log may
   * have been pruned past it), trusting nothing this instance did before.
   */
  private async replay(direct: DirectStore): Promise<void> {
    const { db, storeId } = this.options;
    const record = parseCovered(await direct.get(coveredName));
    const changes = await changesSince(db, record?.snapshot, storeId);
    await this.options.afterReplayRead?.();
    // Never records a covered snapshot: a recovery's writes bypass the breaker, so one could land on a
    // store that came back older meanwhile. The next pass records it (and says why it retired all).
    await this.apply(direct, record, changes, { quiet: true });
  }

  /** Brings the store up to `changes`: their tags bumped, or everything retired when they can't be known. */
  private async apply(
    store: DirectStore,
    record: Covered | undefined,
    changes: Changes,
    { quiet = false } = {},
  ): Promise<void> {
    const { log } = this.options;
    if (!changes.complete) {
      await store.bump([epochTag]);
      if (quiet) return;
      // A first start, a Valkey that lost its data, or one restored from a snapshot older than the log keeps.
      log.info(
        record
          ? "the cache holds data older than the change log keeps (restored or failed over?): starting it empty"
          : "starting with an empty cache",
      );
      return;
    }
    await bumpAll(store, changes.tags);
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

  /**
   * One attempt at the lock (one at a time), by an instance that reaches the
   * store. A lock held while no pass has been seen for `deposeAfterMs` belongs
   * to a session whose path has gone silent (a partition keeps it open for
   * hours): that session is ended, and the lock taken.
   */
  private async stand(): Promise<void> {
    const { cache, storeId, log } = this.options;
    if (this.stopped || this.standing || this.leading || cache.status === "down") return;
    this.standing = true;
    try {
      const session = await this.connect();
      if (await session.tryLock(storeId)) {
        this.lead();
        return;
      }
      const now = performance.now();
      if (this.lastSeen === undefined || now - this.lastSeenAt <= this.deposeAfterMs) return;
      if (!(await session.depose(storeId))) return;
      log.warn(
        { silentMs: Math.round(now - this.lastSeenAt) },
        "the change applier stopped passing while holding its lock: ended its database session",
      );
      this.lastSeenAt = now; // the next applier gets its own time to pass
      if (await session.tryLock(storeId)) this.lead();
    } catch (error) {
      this.lose(error);
    } finally {
      this.standing = false;
    }
  }

  private lead(): void {
    const { log, metrics } = this.options;
    this.leading = true;
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
      if (!this.stopped) {
        log.warn({ reason: error instanceof Error ? error.message : String(error) }, "no longer the change applier");
      }
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
        (payload) => this.wake(payload),
        (covered) => this.heard(covered),
        (reason) => {
          if (mine.session && this.session === mine.session) this.lose(new Error(reason));
        },
        this.deposeAfterMs * 0.8,
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

  /** A write made outside the app committed, or a writer waits for a pass: pass now (or right after the running pass). */
  private wake(payload: string): void {
    this.options.metrics.wakes.inc();
    if (payload === handOffRequest) this.announceRequested = true;
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
    const { cache, storeId, metrics } = this.options;
    const session = this.session;
    if (!session || !this.leading) return;
    const stop = metrics.applierPassDuration.startTimer();
    // Taken as the pass starts: a writer's request that arrives meanwhile is for the next pass, which sees its commit.
    const announce = this.announceRequested;
    this.announceRequested = false;
    try {
      const store = cache.viaBreaker;
      // The store's own record, read back every pass: nothing this process remembers may run ahead of it
      // (the store may have lost its data, or gone back to an older snapshot, since the last pass).
      const record = parseCovered(await store.get(coveredName));
      const changes = await session.changesSince(record?.snapshot, storeId);
      await this.apply(store, record, changes);
      this.passes++;
      const covered: Covered = { snapshot: changes.snapshot, pass: `${this.instance}.${this.passes}` };
      await store.set(coveredName, JSON.stringify(covered), 2 * retentionSeconds);
      // The registration (what the log may be pruned behind: the record the store showed, never more),
      // pruning and sweeping need no haste: about once a second, off the wake-up's path.
      if (record && changes.complete && this.passes % bookkeepingEvery === 1) {
        await session.afterPass(storeId, record.snapshot);
      }
      this.passSeen(performance.now());
      if (announce) await session.announce(changes.snapshot);
      metrics.applierPasses.inc();
      stop();
    } catch (error) {
      if (error instanceof CacheUnavailable) await this.stepDown("the cache store is unreachable from this instance");
      else this.lose(error);
    }
  }

  /** Gives up the lock, if held, and wakes the other instances so one that reaches the store leads now. */
  private async stepDown(reason: string): Promise<void> {
    const { log, metrics, storeId } = this.options;
    const session = this.session;
    if (this.stopped || !this.leading || !session) return;
    this.leading = false;
    clearTimeout(this.passTimer);
    metrics.applier.set(0);
    log.warn({ reason }, "the change applier is stepping down for another instance");
    try {
      await session.unlock(storeId);
      await session.wakeOthers();
    } catch (error) {
      this.lose(error);
    }
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

/** The changes since the store's record `since` (undefined: none; the store is then retired whole). */
async function changesSince(db: Database, since: string | undefined, storeId: string): Promise<Changes> {
  const [row] = rowsOf<Changes>(
    await db.execute(drizzleSql`SELECT snapshot, to_json(tags) AS tags, complete FROM cache.store_changes(
      ${since ?? null}::pg_snapshot, ${storeId}, make_interval(secs => ${retentionSeconds}))`),
  );
  if (!row) throw new Error("cache.store_changes() returned no row");
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
    depose: async () => false,
    wakeOthers: async () => {},
    announce: async () => {},
    snapshotNow: async () => "",
    covers: async () => true,
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
 * wake-ups. Every call is bounded on this side too (`timeoutMs`): a path that
 * goes silent answers nothing and closes nothing, and a pass must not wait on
 * it; the session is then given up, and made again by the next election.
 */
async function serverSession(
  url: string,
  onWake: (payload: string) => void,
  onAnnounced: (covered: string) => void,
  onLost: (reason: string) => void,
  timeoutMs: number,
): Promise<ApplierSession> {
  const tls = postgresTls(url);
  const sql: postgres.Sql = postgres(tls.url, {
    ...(tls.ssl ? { ssl: tls.ssl } : {}),
    max: 1,
    idle_timeout: undefined,
    max_lifetime: null,
    connect_timeout: Math.max(1, Math.ceil(timeoutMs / 1000)),
    fetch_types: false,
    onnotice: () => {},
    connection: { application_name: "dellstore-orders-applier", statement_timeout: timeoutMs },
    onclose: () => onLost("the applier's session closed"),
    onnotify: (channel, payload) => {
      if (channel === wakeChannel) onWake(payload);
      else if (channel === appliedChannel) onAnnounced(payload);
    },
  } as ListenerOptions);
  const db: Database = drizzle(sql, { schema });
  const lockKey = (storeId: string) => `dellstore-orders applier ${storeId}`;
  const bounded = <T>(call: Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the applier's database session did not answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
  };
  // Listening from the start: a writer waiting for a pass may use this session before it ever stands.
  await bounded(
    (async () => {
      await sql.unsafe(`LISTEN ${wakeChannel}`);
      await sql.unsafe(`LISTEN ${appliedChannel}`);
    })(),
  ).catch(async (error: unknown) => {
    await sql.end({ timeout: 0 });
    throw error;
  });
  return {
    tryLock: (storeId) =>
      bounded(
        (async () => {
          const [row] = await sql<{ locked: boolean }[]>`
            SELECT pg_try_advisory_lock(hashtextextended(${lockKey(storeId)}, 0)) AS locked`;
          return row?.locked === true;
        })(),
      ),
    unlock: async (storeId) => {
      await bounded(sql`SELECT pg_advisory_unlock(hashtextextended(${lockKey(storeId)}, 0))`);
    },
    changesSince: (since, storeId) => bounded(changesSince(db, since, storeId)),
    afterPass: (storeId, covered) => bounded(afterPass(db, storeId, covered)),
    depose: async (storeId) => {
      // Waits (up to the bound) for the session to end, so the lock is free when this answers.
      const [row] = await bounded(sql<{ ended: boolean | null }[]>`
        SELECT pg_terminate_backend(pid, ${Math.max(1, timeoutMs - 100)}) AS ended
          FROM cache.applier_lock_holder(${lockKey(storeId)}) AS pid WHERE pid IS NOT NULL`);
      return row?.ended === true;
    },
    wakeOthers: async (payload = "") => {
      await bounded(sql`SELECT pg_notify(${wakeChannel}, ${payload})`);
    },
    announce: async (covered) => {
      await bounded(sql`SELECT pg_notify(${appliedChannel}, ${covered})`);
    },
    snapshotNow: async () => {
      const [row] = await bounded(sql<{ snapshot: string }[]>`SELECT pg_current_snapshot()::text AS snapshot`);
      if (!row) throw new Error("pg_current_snapshot() returned no row");
      return row.snapshot;
    },
    covers: async (a, b) => {
      const [row] = await bounded(
        sql<{ covers: boolean }[]>`SELECT cache.snapshot_covers(${a}::pg_snapshot, ${b}::pg_snapshot) AS covers`,
      );
      return row?.covers === true;
    },
    // A silent path would hold end() for its whole timeout; nothing is left to say on it.
    close: () => sql.end({ timeout: 0 }),
  };
}
