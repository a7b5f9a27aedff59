// Listens for the change notifications of the orders triggers on a dedicated
// PostgreSQL connection and invalidates the tags they name, so writes made
// outside the app (psql, other services, loaders) reach the cache within
// milliseconds.
//
// While that connection is down, notifications are lost: the cache is
// suspended (reads go to the database) until the connection listens again
// and the change log (change-log.ts) has replayed what was written meanwhile.
// The same connection advances the change log's covered snapshot once a
// heartbeat, which also catches a silent stall as well as a close.
//
// Every step of a connection's life checks, after each await, that the
// connection is still the current one: a connection that died while a step
// waited (for a hung Valkey, say) never marks itself listening or keeps a
// heartbeat that would take its successor down.
import postgres from "postgres";
import { postgresTls } from "../../db/client.ts";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import { CacheUnavailable } from "./breaker.ts";
import { type Change, ChangeLog, type ChangeSource } from "./change-log.ts";
import type { DirectStore, QueryCache } from "./query-cache.ts";

export const changesChannel = "orders_changed";

export interface DatabaseChangesOptions {
  url: string;
  cache: QueryCache;
  log: Logger;
  metrics: Metrics;
  /** The application_name of this instance's own database writes, whose tags it invalidates itself. */
  writer?: string | undefined;
  heartbeatMs?: number;
  retryMs?: number;
}

// postgres.js delivers a connection's notifications to this (untyped) option; it is what its own listen() uses.
type ListenerOptions = postgres.Options<Record<string, postgres.PostgresType>> & {
  onnotify: (channel: string, payload: string) => void;
};

/** A notification: the payload of cache.changed() (migration 0004), or a bare JSON array of tags. */
interface Notification {
  tags: string[];
  xid?: string;
  writer?: string;
}

export class DatabaseChanges {
  private sql: postgres.Sql | undefined;
  /** Listening, and caught up with the change log: the cache may be used. */
  private caughtUp = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** The change-log step running on the listener connection, if any: they run one at a time. */
  private stepping: Promise<unknown> | undefined;
  private readonly changeLog: ChangeLog;
  /** Why the last connection failed, so a failure that repeats is reported once. */
  private failingFor: string | undefined;

  constructor(private readonly options: DatabaseChangesOptions) {
    const { cache, log, writer } = options;
    this.changeLog = new ChangeLog({ cache, log, writer });
    cache.suspend("notifications", "not listening yet");
    cache.setRecovery((direct) => this.recoverStore(direct));
  }

  get state(): "up" | "down" {
    return this.caughtUp ? "up" : "down";
  }

  start(): void {
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    clearInterval(this.heartbeat);
    await this.sql?.end({ timeout: 1 });
  }

  private get heartbeatMs(): number {
    return this.options.heartbeatMs ?? 1000;
  }

  private async connect(): Promise<void> {
    const { url } = this.options;
    const tls = postgresTls(url);
    const sql: postgres.Sql = postgres(tls.url, {
      ...(tls.ssl ? { ssl: tls.ssl } : {}),
      max: 1,
      idle_timeout: undefined,
      max_lifetime: null,
      connect_timeout: Math.max(1, Math.ceil(this.heartbeatMs / 1000)),
      fetch_types: false,
      onnotice: () => {},
      connection: { application_name: "dellstore-orders-listener" },
      onclose: () => this.lost(sql, "connection closed"),
      onnotify: (channel, payload) => {
        if (channel === changesChannel) void this.notified(payload);
      },
    } as ListenerOptions);
    this.sql = sql;
    try {
      await this.timed(sql.unsafe(`LISTEN ${changesChannel}`));
    } catch (error) {
      this.lost(sql, error instanceof Error ? error.message : "LISTEN failed");
      return;
    }
    if (this.sql !== sql) return;
    this.heartbeat = setInterval(() => void this.beat(sql), this.heartbeatMs).unref();
    await this.beat(sql);
  }

  /** One heartbeat: catch up with the change log if not yet, else advance its covered snapshot. */
  private async beat(sql: postgres.Sql): Promise<void> {
    if (this.sql !== sql || this.stepping) return;
    const { cache, log, metrics } = this.options;
    const wasCaughtUp = this.caughtUp;
    const step = wasCaughtUp
      ? this.changeLog.advance(this.source(sql), cache.viaBreaker)
      : this.changeLog.catchUp(this.source(sql), cache.viaBreaker);
    this.stepping = step;
    try {
      await step;
      metrics.changeLogSteps.inc();
    } catch (error) {
      // The store is down: its breaker's recovery replays what this step would have (recoverStore).
      if (error instanceof CacheUnavailable) return;
      this.lost(sql, error instanceof Error ? error.message : "heartbeat failed");
      return;
    } finally {
      this.stepping = undefined;
    }
    if (this.sql !== sql || wasCaughtUp) return;
    this.caughtUp = true;
    this.failingFor = undefined;
    metrics.notificationsUp.set(1);
    cache.resume("notifications");
    log.info("listening for database changes");
  }

  /**
   * The breaker's recovery: replays what failed to reach the store while it
   * was down. While not caught up, the listener's own catch-up will do it, and
   * this only checks that the store answers.
   */
  private async recoverStore(direct: DirectStore): Promise<void> {
    const sql = this.sql;
    if (!this.caughtUp || !sql) {
      await direct.get("probe");
      // Catch up as soon as the breaker has closed, not at the next heartbeat.
      if (sql) setImmediate(() => void this.beat(sql));
      return;
    }
    while (this.stepping) await this.stepping.catch(() => {});
    const step = this.changeLog.catchUp(this.source(sql), direct);
    this.stepping = step;
    try {
      await step;
    } finally {
      this.stepping = undefined;
    }
  }

  /** The change log through the listener connection, each query bounded by the heartbeat. */
  private source(sql: postgres.Sql): ChangeSource {
    const current = () => {
      if (this.sql !== sql) throw new Error("connection replaced");
    };
    return {
      read: async (since) => {
        current();
        const [row] = await this.timed(
          since === undefined
            ? sql<{ snapshot: string; changes: Change[] }[]>`
                SELECT pg_current_snapshot()::text AS snapshot, '[]'::json AS changes`
            : sql<{ snapshot: string; changes: Change[] }[]>`
                SELECT pg_current_snapshot()::text AS snapshot, coalesce((
                  SELECT json_agg(json_build_object('xid', xid::text, 'tags', tags, 'writer', writer))
                  FROM cache.change_log
                  WHERE xid >= pg_snapshot_xmin(${since}::pg_snapshot)
                    AND NOT pg_visible_in_snapshot(xid, ${since}::pg_snapshot)), '[]'::json) AS changes`,
        );
        current();
        if (!row) throw new Error("no snapshot");
        return row;
      },
      readTags: async (since) => {
        current();
        // A catch-up after a long outage may have many rows to read: more time than a heartbeat.
        const [row] = await this.timed(
          sql<{ snapshot: string; tags: string[] }[]>`
            SELECT pg_current_snapshot()::text AS snapshot, coalesce((
              SELECT json_agg(DISTINCT tag) FROM cache.change_log, unnest(tags) AS tag
              WHERE xid >= pg_snapshot_xmin(${since}::pg_snapshot)
                AND NOT pg_visible_in_snapshot(xid, ${since}::pg_snapshot)), '[]'::json) AS tags`,
          10,
        );
        current();
        if (!row) throw new Error("no snapshot");
        return row;
      },
      prune: async (olderThanSeconds) => {
        current();
        await this.timed(
          sql`DELETE FROM cache.change_log WHERE at < now() - make_interval(secs => ${olderThanSeconds})`,
        );
      },
    };
  }

  private async timed<T>(query: Promise<T>, heartbeats = 1): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("heartbeat timed out")), heartbeats * this.heartbeatMs);
    });
    try {
      return await Promise.race([query, stalled]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async notified(payload: string): Promise<void> {
    const { cache, log, metrics } = this.options;
    metrics.notifications.inc();
    const notification = parseNotification(payload);
    if (!notification) {
      log.warn({ payload: payload.slice(0, 200) }, "unreadable change notification: retiring every cache entry");
      await cache.retireAll();
      return;
    }
    // This instance invalidated its own write's tags before acknowledging it; the change log makes up for a failure.
    if (this.changeLog.isOwn(notification.writer)) return;
    const { tags, xid } = notification;
    const applied = await (tags.includes("*") ? cache.retireAll() : cache.invalidate(tags));
    if (applied && xid !== undefined) this.changeLog.noteApplied(xid);
  }

  /** The connection is gone or hung: suspend the cache, drop the connection, and try again soon. */
  private lost(sql: postgres.Sql, reason: string): void {
    const { cache, log, metrics } = this.options;
    if (this.sql !== sql || this.stopped) return;
    this.sql = undefined;
    clearInterval(this.heartbeat);
    if (this.caughtUp) {
      this.caughtUp = false;
      metrics.notificationsUp.set(0);
      metrics.notificationOutages.inc();
      log.warn({ reason }, "not listening for database changes: cache suspended until listening again");
    } else if (reason !== this.failingFor) {
      // Never caught up yet (e.g. migration 0004 not applied): say why, once per reason.
      log.warn({ reason }, "can't listen for database changes yet: cache bypassed until then");
    }
    this.failingFor = reason;
    cache.suspend("notifications", reason);
    void sql.end({ timeout: 0 }).catch(() => {});
    this.retry = setTimeout(() => void this.connect(), this.options.retryMs ?? 250).unref();
  }
}

function parseNotification(payload: string): Notification | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return undefined;
  }
  const isTags = (tags: unknown): tags is string[] =>
    Array.isArray(tags) && tags.every((tag) => typeof tag === "string");
  if (isTags(parsed)) return { tags: parsed };
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const { tags, xid, writer } = parsed as Record<string, unknown>;
  if (!isTags(tags)) return undefined;
  return {
    tags,
    ...(typeof xid === "string" ? { xid } : {}),
    ...(typeof writer === "string" ? { writer } : {}),
  };
}
