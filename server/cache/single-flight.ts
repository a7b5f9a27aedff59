/** Concurrent calls with the same key share one run of `load` and its outcome. */
export class SingleFlight {
  private readonly flights = new Map<string, Promise<unknown>>();
  /** Per key, the load that starts once the running one settles, shared by the calls that came meanwhile. */
  private readonly queued = new Map<string, Promise<unknown>>();

  /**
   * `lingerMs` keeps a successful outcome for calls that come just after it
   * settled: a request whose cache read was already on the wire when the value
   * was stored would otherwise load it again. Only for keys that pin the data's
   * version, so that a later call with the same key may take the same value.
   */
  run<T>(key: string, load: () => Promise<T>, lingerMs = 0): Promise<T> {
    const running = this.flights.get(key);
    if (running) return running as Promise<T>;
    const forget = () => {
      if (this.flights.get(key) === flight) this.flights.delete(key);
    };
    const flight = load().then(
      (value) => {
        if (lingerMs > 0) setTimeout(forget, lingerMs).unref();
        else forget();
        return value;
      },
      (error: unknown) => {
        forget();
        throw error;
      },
    );
    this.flights.set(key, flight);
    return flight;
  }

  /**
   * Like `run`, but never joins a load that had already started when it was
   * called: the calls that come while one runs share the next one, which starts
   * when it settles. For reads that must see every write acknowledged before
   * they arrived, at the cost of one more load, not one per call.
   */
  runFresh<T>(key: string, load: () => Promise<T>): Promise<T> {
    const queued = this.queued.get(key);
    if (queued) return queued as Promise<T>;
    const running = this.flights.get(key);
    if (!running) return this.run(key, load);
    const settled = () => {
      this.queued.delete(key);
      return this.run(key, load);
    };
    const next = running.then(settled, settled);
    this.queued.set(key, next);
    return next;
  }

  /** The load running (or lingering) under `key`, to share its outcome without starting one. */
  running<T>(key: string): Promise<T> | undefined {
    return this.flights.get(key) as Promise<T> | undefined;
  }

  get size(): number {
    return this.flights.size;
  }
}
