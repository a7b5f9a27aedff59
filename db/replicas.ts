// Knows which read replicas may serve a read. Each replica is checked about
// every 100 ms on a connection of its own: its replay position
// (pg_last_wal_replay_lsn()) and how far it is behind the primary. A replica
// that fails, doesn't answer in time, or lags beyond the bound is skipped and
// checked again later; choose() hands out only one that has replayed what the
// read must see. A replica's failure never reaches a caller: without one, the
// caller reads from the primary.
//
// Lag is measured against the primary's own position, not with
// `now() - pg_last_xact_replay_timestamp()`, which grows on an idle primary
// (nothing to replay, no new commit) as if the replica fell behind. The primary's
// pg_current_wal_lsn() is sampled as often as the replicas are checked; a
// replica's lag is how long ago the primary first had a position the replica
// has still not replayed (0 when it has replayed the latest sample).
import postgres from "postgres";
import type { Logger } from "../server/logger.ts";
import { maskSecrets } from "../server/secrets.ts";
import {
  connectPostgres,
  type Database,
  type DatabaseHandle,
  describeConnectionError,
  type PoolOptions,
  postgresTls,
} from "./client.ts";
import { formatLsn, parseLsn } from "./lsn.ts";

/** up: may serve reads; lagging: answers, but is too far behind (or its lag is not known yet); down: doesn't answer. */
export type ReplicaStatus = "up" | "lagging" | "down";

/** What /health and /metrics say about one replica. */
export interface ReplicaState {
  /** Host, port and database: never credentials. */
  readonly name: string;
  readonly status: ReplicaStatus;
  /** How far behind the primary it was at its last check; undefined while not known. */
  readonly lagMs: number | undefined;
  /** The replay position last observed on it. */
  readonly replayLsn: string | undefined;
  /** Why it is lagging or down. */
  readonly reason: string | undefined;
}

/** A replica chosen for a read. */
export interface Replica {
  readonly name: string;
  readonly db: Database;
  readonly sql: postgres.Sql;
  /**
   * Its replay position as observed before choose() answered. Replay only moves
   * forward, so every read started on it from now on sees at least this much.
   */
  readonly replayLsn: string;
}

export interface ReplicaSetOptions {
  /** DATABASE_URL: the primary whose position the replicas' lag is measured against. */
  primaryUrl: string;
  /** DATABASE_REPLICA_URLS, each with DATABASE_URL's URL rules and TLS options. */
  replicaUrls: readonly string[];
  /** DATABASE_REPLICA_MAX_LAG_MS: a replica further behind than this is skipped. */
  maxLagMs: number;
  log: Logger;
  /** Called when a replica's status changes (metrics, health); state() has the rest. */
  onChange?: (state: ReplicaState) => void;
  /** The replicas' read pools (size, timeouts, tracing), as for the primary's pool. */
  pool?: PoolOptions;
  /** How often each replica and the primary are checked. */
  pollIntervalMs?: number;
  /** A check not answered within this long marks the replica down. */
  pollTimeoutMs?: number;
  /** A down replica is retried after twice the interval, doubling up to this. */
  maxRetryMs?: number;
}

interface Sample {
  lsn: bigint;
  at: number;
}

/** The primary's WAL position over the recent past, to tell how long ago a replica's position was the primary's. */
class PrimaryPositions {
  private samples: Sample[] = [];
  /** The newest sample dropped for age: a replica behind it is at least that far behind. */
  private horizon: Sample | undefined;

  constructor(private readonly keepMs: number) {}

  add(lsn: bigint, at: number): void {
    const last = this.samples.at(-1);
    // Only the first time a position was seen counts: it's when the primary first had what it holds.
    if (last && lsn === last.lsn) return;
    // Earlier than the last: DATABASE_URL now leads to another server; what was known of the old one says nothing.
    if (last && lsn < last.lsn) {
      this.samples = [];
      this.horizon = undefined;
    }
    this.samples.push({ lsn, at });
    while (this.samples.length > 1 && (this.samples[0] as Sample).at < at - this.keepMs) {
      this.horizon = this.samples.shift();
    }
  }

  get known(): boolean {
    return this.samples.length > 0;
  }

  /** How long ago the primary first had a position past `replay`; 0 when none is known to be past it. */
  lagOf(replay: bigint, now: number): number {
    if (this.horizon && this.horizon.lsn > replay) return now - this.horizon.at;
    const behind = this.samples.find((sample) => sample.lsn > replay);
    return behind ? Math.max(0, now - behind.at) : 0;
  }
}

/** Resolves or rejects as `promise` does, or rejects after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** An error in words for logs and /health, never with a password. */
function describe(error: unknown): string {
  return maskSecrets(describeConnectionError(error));
}

/** insufficient_privilege: a managed service may not let its users read pg_control_system(). */
const isPermissionDenied = (error: unknown) => (error as { code?: unknown } | undefined)?.code === "42501";

/** One connection of its own that checks a server, separate from the pools reads queue on. */
function monitorConnection(url: string, onclose: () => void): postgres.Sql {
  const tls = postgresTls(url);
  return postgres(tls.url, {
    ...(tls.ssl ? { ssl: tls.ssl } : {}),
    max: 1,
    connect_timeout: 5,
    max_lifetime: null,
    // Its queries return text and booleans. (And postgres.js's own type query, when a connection is
    // ended while it runs, rejects where no one can catch it.)
    fetch_types: false,
    onnotice: () => {},
    onclose,
    connection: { application_name: "dellstore-orders-replica-check" },
  });
}

/** The system identifier of a server (a replica's is its primary's); null when it may not be read. */
async function systemIdentifier(sql: postgres.Sql, timeoutMs: number): Promise<string | null> {
  try {
    const [row] = await within(
      sql<{ id: string }[]>`SELECT system_identifier::text AS id FROM pg_control_system()`,
      timeoutMs,
    );
    return row?.id ?? null;
  } catch (error) {
    if (isPermissionDenied(error)) return null;
    throw error;
  }
}

class ReplicaCheck {
  status: ReplicaStatus = "down";
  reason: string | undefined = "not checked yet";
  lagMs: number | undefined;
  replay: bigint | undefined;
  /** Failed checks in a row, for the retry's backoff. */
  failures = 0;
  monitor: postgres.Sql | undefined;
  /** Whether the monitor's server is known to replicate the primary (its system identifier). */
  verified = false;
  timer: NodeJS.Timeout | undefined;
  checking = false;
  /** Whether it has been checked at all: the first status is logged whatever it is. */
  checked = false;
  readonly name: string;
  readonly db: Database;
  readonly sql: postgres.Sql;

  constructor(
    readonly url: string,
    readonly handle: DatabaseHandle,
  ) {
    this.name = handle.description;
    this.db = handle.db;
    if (!handle.sql) throw new Error("a replica's pool is a postgres.js pool");
    this.sql = handle.sql;
  }

  state(): ReplicaState {
    return {
      name: this.name,
      status: this.status,
      lagMs: this.lagMs === undefined ? undefined : Math.round(this.lagMs),
      replayLsn: this.replay === undefined ? undefined : formatLsn(this.replay),
      reason: this.reason,
    };
  }
}

export class ReplicaSet {
  private readonly replicas: ReplicaCheck[];
  private readonly primary: PrimaryPositions;
  private primaryMonitor: postgres.Sql | undefined;
  /** undefined: not read yet; null: not readable here. */
  private primaryId: string | null | undefined;
  private primaryFailures = 0;
  private primaryTimer: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<() => void>();
  private closed = false;
  /** Round robin among the replicas that may serve a read. */
  private turn = 0;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly maxRetryMs: number;

  /** Throws only what DATABASE_URL's pool would for the same URL (a CA file that can't be read). */
  constructor(private readonly options: ReplicaSetOptions) {
    this.intervalMs = options.pollIntervalMs ?? 100;
    this.timeoutMs = options.pollTimeoutMs ?? 1000;
    this.maxRetryMs = options.maxRetryMs ?? 2000;
    this.primary = new PrimaryPositions(Math.max(10_000, 10 * options.maxLagMs));
    this.replicas = options.replicaUrls.map(
      (url) =>
        new ReplicaCheck(
          url,
          connectPostgres(url, {
            ...options.pool,
            applicationName: options.pool?.applicationName ?? "dellstore-orders-replica",
          }),
        ),
    );
    // The primary first: a replica checked before its position is known could only be called "lag unknown".
    void this.samplePrimary().then(() => {
      for (const replica of this.replicas) void this.check(replica);
    });
  }

  /**
   * A replica that has replayed `minLsn` (any replica that may serve reads when
   * undefined), waiting up to `waitMs` for one to catch up; undefined when none
   * does or none is up: the caller reads from the primary. Throws only for a
   * `minLsn` that is no WAL position (validate what clients send with isLsn).
   */
  async choose(minLsn: string | undefined, waitMs: number): Promise<Replica | undefined> {
    const target = minLsn === undefined ? undefined : parseLsn(minLsn);
    const ready = this.pick(target);
    if (ready || waitMs <= 0 || !this.anyUp()) return ready;
    return new Promise((resolve) => {
      const finish = (replica: Replica | undefined) => {
        clearTimeout(timer);
        this.waiters.delete(recheck);
        resolve(replica);
      };
      // After every check: one has caught up, or none is left to wait for.
      const recheck = () => {
        const replica = this.pick(target);
        if (replica || !this.anyUp()) finish(replica);
      };
      const timer = setTimeout(() => finish(undefined), waitMs);
      this.waiters.add(recheck);
    });
  }

  /** Each replica's state, in DATABASE_REPLICA_URLS's order. */
  state(): ReplicaState[] {
    return this.replicas.map((replica) => replica.state());
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.primaryTimer);
    for (const waiter of [...this.waiters]) waiter();
    const ending: Promise<void>[] = [];
    if (this.primaryMonitor) ending.push(this.primaryMonitor.end({ timeout: 0 }));
    this.primaryMonitor = undefined;
    for (const replica of this.replicas) {
      clearTimeout(replica.timer);
      if (replica.monitor) ending.push(replica.monitor.end({ timeout: 0 }));
      replica.monitor = undefined;
      ending.push(replica.handle.close());
    }
    await Promise.allSettled(ending);
  }

  private anyUp(): boolean {
    return !this.closed && this.replicas.some((replica) => replica.status === "up");
  }

  private pick(target: bigint | undefined): Replica | undefined {
    if (this.closed) return undefined;
    const eligible = this.replicas.filter(
      (replica) =>
        replica.status === "up" && replica.replay !== undefined && (target === undefined || replica.replay >= target),
    );
    const chosen = eligible[this.turn++ % Math.max(1, eligible.length)];
    if (!chosen || chosen.replay === undefined) return undefined;
    return { name: chosen.name, db: chosen.db, sql: chosen.sql, replayLsn: formatLsn(chosen.replay) };
  }

  private retryDelay(failures: number): number {
    return Math.min(this.intervalMs * 2 ** failures, this.maxRetryMs);
  }

  private async samplePrimary(): Promise<void> {
    if (this.closed) return;
    let delay = this.intervalMs;
    try {
      this.primaryMonitor ??= monitorConnection(this.options.primaryUrl, () => {});
      const monitor = this.primaryMonitor;
      if (this.primaryId === undefined) this.primaryId = await systemIdentifier(monitor, this.timeoutMs);
      const [row] = await within(monitor<{ lsn: string }[]>`SELECT pg_current_wal_lsn()::text AS lsn`, this.timeoutMs);
      if (row) this.primary.add(parseLsn(row.lsn), performance.now());
      if (this.primaryFailures > 0) this.options.log.info("read replicas: the primary's WAL position is read again");
      this.primaryFailures = 0;
    } catch (error) {
      if (this.closed) return;
      if (this.primaryFailures === 0) {
        this.options.log.warn(
          `read replicas: can't read the primary's WAL position (${describe(error)}); replicas' lag is measured against the last one read`,
        );
      }
      this.primaryFailures++;
      delay = this.retryDelay(this.primaryFailures);
      void this.primaryMonitor?.end({ timeout: 0 });
      this.primaryMonitor = undefined;
    }
    if (!this.closed) this.primaryTimer = setTimeout(() => void this.samplePrimary(), delay).unref();
  }

  private async check(replica: ReplicaCheck): Promise<void> {
    if (this.closed) return;
    replica.checking = true;
    try {
      const monitor = this.monitorOf(replica);
      const observed = await this.observe(replica, monitor);
      // Its connection closed while the answer was on its way: the close has marked it down already.
      if (replica.monitor === monitor) this.judge(replica, observed, performance.now());
    } catch (error) {
      if (!this.closed) {
        replica.failures++;
        this.markDown(replica, error instanceof NotAReplica ? error.message : describe(error));
      }
    } finally {
      replica.checking = false;
      this.notifyWaiters();
    }
    if (!this.closed) {
      this.schedule(replica, replica.status === "down" ? this.retryDelay(replica.failures) : this.intervalMs);
    }
  }

  /** The replica's replay position; throws when it can't say, or isn't a replica of the primary. */
  private async observe(replica: ReplicaCheck, monitor: postgres.Sql): Promise<bigint> {
    if (!replica.verified && this.primaryId !== undefined) {
      // Not readable on either side: replay positions and lag still guard every read.
      const id = this.primaryId === null ? null : await systemIdentifier(monitor, this.timeoutMs);
      if (id !== null && id !== this.primaryId) {
        throw new NotAReplica("replicates another server than DATABASE_URL's (its system identifier differs)");
      }
      replica.verified = true;
    }
    const [row] = await within(
      monitor<{ recovering: boolean; replay: string | null }[]>`
        SELECT pg_is_in_recovery() AS recovering, pg_last_wal_replay_lsn()::text AS replay`,
      this.timeoutMs,
    );
    if (!row?.recovering || row.replay === null) {
      throw new NotAReplica("is not replaying WAL (a primary, or a promoted replica)");
    }
    return parseLsn(row.replay);
  }

  /** Up, or lagging: by how long ago the primary first had a position it hasn't replayed. */
  private judge(replica: ReplicaCheck, replay: bigint, now: number): void {
    replica.replay = replay;
    replica.failures = 0;
    // Until the primary is known (and the replica checked against it), its lag isn't.
    if (!this.primary.known || !replica.verified) {
      replica.lagMs = undefined;
      this.setStatus(replica, "lagging", "its lag is not known until the primary's WAL position is read");
      return;
    }
    replica.lagMs = this.primary.lagOf(replay, now);
    if (replica.lagMs <= this.options.maxLagMs) this.setStatus(replica, "up", undefined);
    else {
      this.setStatus(
        replica,
        "lagging",
        `${Math.round(replica.lagMs)} ms behind the primary, more than DATABASE_REPLICA_MAX_LAG_MS (${this.options.maxLagMs})`,
      );
    }
  }

  /** The replica's check connection, opened anew after it went down. */
  private monitorOf(replica: ReplicaCheck): postgres.Sql {
    if (replica.monitor) return replica.monitor;
    const monitor: postgres.Sql = monitorConnection(replica.url, () => this.connectionClosed(replica, monitor));
    replica.monitor = monitor;
    return monitor;
  }

  private schedule(replica: ReplicaCheck, delay: number): void {
    clearTimeout(replica.timer);
    replica.timer = setTimeout(() => void this.check(replica), delay).unref();
  }

  /**
   * A closed check connection (the replica stopping or restarting) marks it down
   * at once, not at the next check: a replica that restarts replays from an
   * earlier position again, so the position observed before must not be trusted.
   */
  private connectionClosed(replica: ReplicaCheck, monitor: postgres.Sql): void {
    if (this.closed || replica.monitor !== monitor) return;
    replica.failures++;
    this.markDown(replica, "its connection closed");
    this.notifyWaiters();
    // A check under way fails on its own and schedules the retry.
    if (!replica.checking) this.schedule(replica, this.retryDelay(replica.failures));
  }

  private markDown(replica: ReplicaCheck, reason: string): void {
    const monitor = replica.monitor;
    replica.monitor = undefined;
    replica.verified = false;
    void monitor?.end({ timeout: 0 });
    replica.replay = undefined;
    replica.lagMs = undefined;
    this.setStatus(replica, "down", reason);
  }

  private setStatus(replica: ReplicaCheck, status: ReplicaStatus, reason: string | undefined): void {
    const changed = replica.status !== status || !replica.checked;
    replica.checked = true;
    replica.status = status;
    replica.reason = reason;
    if (!changed) return;
    const { log } = this.options;
    if (status === "up") log.info(`read replica ${replica.name} is up (${Math.round(replica.lagMs ?? 0)} ms behind)`);
    else if (status === "lagging") log.warn(`read replica ${replica.name} is skipped: ${reason}`);
    else log.warn(`read replica ${replica.name} is down: ${reason}; reads go to the primary until it answers`);
    this.options.onChange?.(replica.state());
  }

  private notifyWaiters(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** A server that answers but must not serve reads as a replica of DATABASE_URL's. */
class NotAReplica extends Error {
  override name = "NotAReplica";
}
