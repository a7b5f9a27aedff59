// Replays the changes an instance may have missed, from the change log the
// database keeps (migration 0004), instead of retiring every cached entry.
//
// Every write to orders logs (transaction id, tags) and notifies, both at
// commit. The store holds a "covered" snapshot: every log row visible in it
// has been applied (its tags invalidated) in the store. Each listening
// instance advances it about once a second: it takes a snapshot on its
// listener connection, invalidates the rows since the last covered snapshot
// that no notification applied yet, and stores the new snapshot. An instance
// that wasn't listening (starting, reconnecting) or lost invalidations (the
// store was down) replays every row not visible in the stored snapshot before
// it uses the cache again. Only when there is no covered snapshot (the first
// start, or nobody listened for longer than the log's retention) does it
// retire everything.
import type { Logger } from "../logger.ts";
import { epochTag } from "./keys.ts";
import type { DirectStore, QueryCache } from "./query-cache.ts";

/** How long the log keeps a row after it was written, and so how old a covered snapshot may be. */
export const retentionSeconds = 15 * 60;
const coveredName = "changes:covered";

export interface Change {
  xid: string;
  tags: string[];
  writer: string;
}

/** The log as seen from one connection: a snapshot taken now, and the changes not visible in `since`. */
export interface ChangeSource {
  read(since: string | undefined): Promise<{ snapshot: string; changes: Change[] }>;
  /** The same, for a catch-up: only the distinct tags, however many changes there were. */
  readTags(since: string): Promise<{ snapshot: string; tags: string[] }>;
  prune(olderThanSeconds: number): Promise<void>;
}

export interface ChangeLogOptions {
  cache: QueryCache;
  log: Logger;
  /** This instance's application_name on its writes, if it can tell them. */
  writer?: string | undefined;
}

export class ChangeLog {
  /** This instance's covered snapshot, from its last successful step. */
  private covered: string | undefined;
  /** Transactions whose notification was applied, with the step it came in. */
  private readonly applied = new Map<string, number>();
  private steps = 0;

  constructor(private readonly options: ChangeLogOptions) {}

  /** A notification's tags were invalidated; the next step needn't do it again. */
  noteApplied(xid: string): void {
    this.applied.set(xid, this.steps);
  }

  /** Whether a notification reports this instance's own write (which invalidated its tags itself). */
  isOwn(writer: string | undefined): boolean {
    return writer !== undefined && writer === this.options.writer;
  }

  /**
   * For an instance that may have missed changes: replays every change the
   * stored covered snapshot doesn't include, trusting no notification; with no
   * stored snapshot, retires everything. Resolves "replayed" or "retired".
   */
  async catchUp(source: ChangeSource, store: DirectStore): Promise<"replayed" | "retired"> {
    const stored = await store.get(coveredName);
    if (stored === null) {
      const { snapshot } = await source.read(undefined);
      await store.bump([epochTag]);
      await this.cover(store, snapshot);
      this.options.log.info("no record of which changes the cache has seen: retired every entry");
      return "retired";
    }
    await this.step(source, store, stored, false);
    return "replayed";
  }

  /** Applies what no notification did since the last step, and records the new covered snapshot. */
  async advance(source: ChangeSource, store: DirectStore): Promise<void> {
    if (this.covered === undefined) {
      await this.catchUp(source, store);
      return;
    }
    await this.step(source, store, this.covered, true);
    if (this.steps % 60 === 0) await source.prune(2 * retentionSeconds);
  }

  private async step(source: ChangeSource, store: DirectStore, since: string, trustNotifications: boolean) {
    if (!trustNotifications) {
      // Catching up: every change since `since` counts, so the database sends only their distinct tags.
      const { snapshot, tags } = await source.readTags(since);
      await this.bump(store, new Set(tags));
      if (tags.length > 0) this.options.log.info({ tags: tags.length }, "replayed the changes the cache missed");
      await this.cover(store, snapshot);
      return;
    }
    const { cache } = this.options;
    const mark = cache.ownWritesMark;
    const { snapshot, changes } = await source.read(since);
    // Own writes bump their tags before they are acknowledged: once those that may be in this snapshot
    // have ended, their rows are applied, unless one failed to bump.
    const ownDone = await cache.ownWritesSettledSince(mark, 1000);
    const tags = new Set<string>();
    for (const change of changes) {
      if (this.applied.has(change.xid)) continue;
      if (ownDone && this.isOwn(change.writer)) continue;
      for (const tag of change.tags) tags.add(tag);
    }
    await this.bump(store, tags);
    await this.cover(store, snapshot);
    for (const change of changes) this.applied.delete(change.xid);
    // Forget notifications whose row never showed (a trigger that doesn't log, or a row pruned already).
    for (const [xid, step] of this.applied) if (step < this.steps - 10) this.applied.delete(xid);
  }

  /** Past a few hundred tags, retiring everything is cheaper than invalidating each. */
  private async bump(store: DirectStore, tags: Set<string>): Promise<void> {
    if (tags.size === 0) return;
    await store.bump(tags.has(epochTag) || tags.size > 500 ? [epochTag] : [...tags]);
  }

  private async cover(store: DirectStore, snapshot: string): Promise<void> {
    await store.set(coveredName, snapshot, retentionSeconds);
    this.covered = snapshot;
    this.steps++;
  }
}
