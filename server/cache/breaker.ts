// Fail-open for the cache: the first failed store call opens the breaker, and
// from then on requests skip the cache entirely (no timeout each) until a
// background probe succeeds. The probe is the cache's recovery step (replaying
// the change log, or bumping its epoch), so nothing written before or during
// the outage is served after it.

export class CacheUnavailable extends Error {
  override name = "CacheUnavailable";
}

export type BreakerState = "up" | "down";

export interface BreakerOptions {
  /** Runs before the breaker closes again; the breaker stays open until it succeeds. */
  recover: () => Promise<void>;
  onStateChange: (state: BreakerState, error?: unknown) => void;
  onError: (operation: string, error: unknown) => void;
  retryMs?: number;
  maxRetryMs?: number;
}

export class Breaker {
  private current: BreakerState = "down";
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Whether the current "down" has been reported. */
  private announced = false;
  private probes = 0;
  /** Failed store calls so far: a recovery during which one failed (a write's bump, say) doesn't close the breaker. */
  private failures = 0;

  constructor(private readonly options: BreakerOptions) {}

  get state(): BreakerState {
    return this.current;
  }

  /** Starts in the open state and probes at once: an instance can't know what it missed before it started. */
  start(): void {
    this.schedule(0);
  }

  /** Runs a store call; throws CacheUnavailable without calling it while the breaker is open. */
  run<T>(operation: string, call: () => Promise<T>): Promise<T> {
    if (this.current === "down") return Promise.reject(new CacheUnavailable(`cache is down (${operation} skipped)`));
    return this.attempt(operation, call);
  }

  /** Runs a store call whatever the state; a failure trips the breaker (or keeps it open). */
  async attempt<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      this.options.onError(operation, error);
      this.trip(error);
      throw new CacheUnavailable(`cache ${operation} failed`, { cause: error });
    }
  }

  trip(error?: unknown): void {
    this.failures++;
    // A stopped breaker reports nothing: the store's own close at shutdown is no outage.
    if (this.current === "down" || this.closed) return;
    this.current = "down";
    this.announced = true;
    this.options.onStateChange("down", error);
    this.schedule(this.options.retryMs ?? 250);
  }

  stop(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.probe(delayMs), delayMs).unref();
  }

  private async probe(lastDelayMs: number): Promise<void> {
    this.probes++;
    try {
      const failures = this.failures;
      await this.options.recover();
      if (this.closed) return;
      // Checked in the same turn as the state changes: a bump that failed meanwhile may have missed the replay.
      if (this.failures !== failures) throw new Error("a store call failed during the recovery");
      this.current = "up";
      this.announced = false;
      this.options.onStateChange("up");
    } catch (error) {
      // A cache that has never come up says why once, as one that went down does;
      // not at the very first probe, which usually only finds the connection still opening.
      if (!this.announced && this.probes > 1) {
        this.announced = true;
        this.options.onStateChange("down", error);
      }
      const base = this.options.retryMs ?? 250;
      this.schedule(Math.min(Math.max(lastDelayMs * 2, base), this.options.maxRetryMs ?? 2000));
    }
  }
}
