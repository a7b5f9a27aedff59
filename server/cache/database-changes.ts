// Listens for the orders triggers' notifications on a dedicated PostgreSQL
// connection and invalidates the tags they name, so writes made outside the
// app (psql, other services, loaders) reach the cache within milliseconds.
//
// While that connection is down, notifications are lost and nobody can tell
// which: the cache is suspended (reads go to the database), and it resumes
// only after retiring every entry, once the connection listens again. A
// heartbeat on the connection catches a silent stall as well as a close.
import postgres from "postgres";
import { postgresTls } from "../../db/client.ts";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import type { QueryCache } from "./query-cache.ts";

export const changesChannel = "orders_changed";

export interface DatabaseChangesOptions {
  url: string;
  cache: QueryCache;
  log: Logger;
  metrics: Metrics;
  heartbeatMs?: number;
  retryMs?: number;
}

// postgres.js delivers a connection's notifications to this (untyped) option; it is what its own listen() uses.
type ListenerOptions = postgres.Options<Record<string, postgres.PostgresType>> & {
  onnotify: (channel: string, payload: string) => void;
};

export class DatabaseChanges {
  private sql: postgres.Sql | undefined;
  private listening = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly options: DatabaseChangesOptions) {
    options.cache.suspend("notifications", "not listening yet");
  }

  get state(): "up" | "down" {
    return this.listening ? "up" : "down";
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

  private async connect(): Promise<void> {
    const { url, log, metrics, cache } = this.options;
    const heartbeatMs = this.options.heartbeatMs ?? 1000;
    const tls = postgresTls(url);
    const sql = postgres(tls.url, {
      ...(tls.ssl ? { ssl: tls.ssl } : {}),
      max: 1,
      idle_timeout: undefined,
      max_lifetime: null,
      connect_timeout: Math.max(1, Math.ceil(heartbeatMs / 1000)),
      fetch_types: false,
      onnotice: () => {},
      connection: { application_name: "dellstore-orders-listener" },
      onclose: () => this.lost("connection closed"),
      onnotify: (channel, payload) => {
        if (channel === changesChannel) void this.notified(payload);
      },
    } as ListenerOptions);
    this.sql = sql;
    try {
      await sql.unsafe(`LISTEN ${changesChannel}`);
      // Listening again: whatever was written while nobody listened is unknown, so retire everything.
      await cache.retireAll();
      this.listening = true;
      metrics.notificationsUp.set(1);
      cache.resume("notifications");
      log.info("listening for database changes");
      this.heartbeat = setInterval(() => void this.beat(sql, heartbeatMs), heartbeatMs).unref();
    } catch (error) {
      this.lost(error instanceof Error ? error.message : "LISTEN failed");
    }
  }

  private async beat(sql: postgres.Sql, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("heartbeat timed out")), timeoutMs);
    });
    try {
      await Promise.race([sql`SELECT 1`, stalled]);
    } catch (error) {
      this.lost(error instanceof Error ? error.message : "heartbeat failed");
    } finally {
      clearTimeout(timer);
    }
  }

  private async notified(payload: string): Promise<void> {
    const { cache, log, metrics } = this.options;
    metrics.notifications.inc();
    let tags: unknown;
    try {
      tags = JSON.parse(payload);
    } catch {}
    if (!Array.isArray(tags) || !tags.every((tag) => typeof tag === "string")) {
      log.warn({ payload: payload.slice(0, 200) }, "unreadable change notification: retiring every cache entry");
      tags = ["*"];
    }
    const list = tags as string[];
    await (list.includes("*") ? cache.retireAll() : cache.invalidate(list));
  }

  /** The connection is gone or hung: suspend the cache, drop the connection, and try again soon. */
  private lost(reason: string): void {
    const { cache, log, metrics } = this.options;
    const sql = this.sql;
    if (!sql || this.stopped) return;
    this.sql = undefined;
    clearInterval(this.heartbeat);
    if (this.listening) {
      this.listening = false;
      metrics.notificationsUp.set(0);
      metrics.notificationOutages.inc();
      log.warn({ reason }, "not listening for database changes: cache suspended until listening again");
    }
    cache.suspend("notifications", reason);
    void sql.end({ timeout: 0 }).catch(() => {});
    if (!this.stopped) this.retry = setTimeout(() => void this.connect(), this.options.retryMs ?? 250).unref();
  }
}
