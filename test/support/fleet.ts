// Server processes sharing PostgreSQL and Valkey, and the history of the
// requests made to them: API writes on any instance, psql writes behind all of
// them, reads on every instance, each recorded with its start, end and answer,
// so a checker can find stale reads.
import { expect } from "vitest";
import { run } from "./run.ts";
import type { ServerProcess } from "./server-process.ts";

/** A set of instances; one being restarted takes no new requests, and is stopped once it has none running. */
export class Fleet {
  servers: ServerProcess[] = [];
  private readonly draining = new Set<number>();
  private readonly running: number[];

  constructor(
    private readonly start: () => Promise<ServerProcess>,
    readonly size = 3,
  ) {
    this.running = Array.from({ length: size }, () => 0);
  }

  async startAll(): Promise<void> {
    this.servers = await Promise.all(this.running.map(() => this.start()));
  }

  /** Runs `request` on a random instance that takes requests. */
  async on<T>(request: (server: ServerProcess, index: number) => Promise<T>): Promise<T> {
    const live = this.servers.map((_, i) => i).filter((i) => !this.draining.has(i));
    const index = live[Math.floor(Math.random() * live.length)] as number;
    this.running[index] = (this.running[index] ?? 0) + 1;
    try {
      return await request(this.servers[index] as ServerProcess, index);
    } finally {
      this.running[index] = (this.running[index] ?? 1) - 1;
    }
  }

  /** Restarts instance `index`; `beforeStop` sees it drained (e.g. to read its metrics). SIGKILL: killed, not stopped. */
  async restart(
    index: number,
    beforeStop?: (server: ServerProcess) => Promise<void>,
    signal: "SIGTERM" | "SIGKILL" = "SIGTERM",
  ): Promise<void> {
    this.draining.add(index);
    await expect.poll(() => this.running[index], { interval: 2, timeout: 10_000 }).toBe(0);
    const old = this.servers[index] as ServerProcess;
    await beforeStop?.(old);
    const code = await old.stop(signal);
    if (signal === "SIGTERM") expect(code).toBe(0);
    this.servers[index] = await this.start();
    this.draining.delete(index);
  }

  stop(): Promise<unknown> {
    return Promise.all(this.servers.map((s) => s.stop()));
  }
}

/** A customer's count, or the total. */
export type Key = number | "all";

export interface Write {
  via: "api" | "psql";
  customer: number;
  start: number;
  /** When the writer had its acknowledgement (for psql, when it exited after COMMIT). */
  end: number;
}

export interface Read {
  server: number;
  key: Key;
  start: number;
  end: number;
  value: number;
}

export interface History {
  base: Map<Key, number>;
  writes: Write[];
  reads: Read[];
}

const now = () => performance.now();
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

export async function count(server: ServerProcess, key: Key): Promise<number> {
  const res = await fetch(`${server.url}/count${key === "all" ? "" : `?customerid=${key}`}`);
  if (res.status !== 200) throw new Error(`GET /count answered ${res.status}`);
  return ((await res.json()) as { count: number }).count;
}

/** The value of the first /metrics line `pattern` matches (its first group), 0 if none does. */
export async function metric(server: ServerProcess, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}

/**
 * Runs an API writer, a psql writer and `readers` readers of `customers`' counts
 * and the total on the fleet until `scenario` resolves, and returns what each
 * request saw.
 */
export async function recordHistory(options: {
  fleet: Fleet;
  databaseUrl: string;
  customers: readonly number[];
  scenario: () => Promise<void>;
  readers?: number;
}): Promise<History> {
  const { fleet, databaseUrl, customers } = options;
  const keys: Key[] = [...customers, "all"];
  const base = new Map<Key, number>();
  for (const key of keys) base.set(key, await count(fleet.servers[0] as ServerProcess, key));
  const writes: Write[] = [];
  const reads: Read[] = [];
  let done = false;

  const apiWriter = async () => {
    while (!done) {
      const customer = pick(customers);
      const start = now();
      const status = await fleet.on(async (server) => {
        const res = await fetch(`${server.url}/add/`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ customerid: customer, netamount: 1, tax: 0.08 }),
        });
        await res.arrayBuffer();
        return res.status;
      });
      expect(status).toBe(200);
      writes.push({ via: "api", customer, start, end: now() });
      await new Promise((resolve) => setTimeout(resolve, 20)); // pacing, not synchronization
    }
  };
  const psqlWriter = async () => {
    while (!done) {
      const customer = pick(customers);
      const start = now();
      const result = await run("psql", [
        databaseUrl,
        "-qc",
        `INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount) VALUES ('2004-08-08', ${customer}, 1, 0.08, 1.08)`,
      ]);
      expect(result.code, result.stderr).toBe(0);
      writes.push({ via: "psql", customer, start, end: now() });
    }
  };
  const reader = async () => {
    while (!done) {
      const key = pick(keys);
      const start = now();
      const [server, value] = await fleet.on(async (s, i) => [i, await count(s, key)] as const);
      reads.push({ server, key, start, end: now(), value });
    }
  };
  const scenario = async () => {
    try {
      await options.scenario();
    } finally {
      done = true;
    }
  };
  await Promise.all([scenario(), apiWriter(), psqlWriter(), ...Array.from({ length: options.readers ?? 6 }, reader)]);
  return { base, writes, reads };
}

const affects = (w: Write, key: Key) => key === "all" || w.customer === key;

/**
 * Reads that began after a write was acknowledged (psql: committed plus its
 * propagation bound, `propagationMs` or what `boundOf` says for it) but don't count it.
 */
export function staleReads(
  { base, writes, reads }: History,
  propagationMs: number,
  boundOf: (w: Write) => number = () => propagationMs,
): Read[] {
  return reads.filter((r) => {
    const mustSee = writes.filter(
      (w) => affects(w, r.key) && (w.via === "api" ? w.end : w.end + boundOf(w)) <= r.start,
    );
    return r.value < (base.get(r.key) ?? 0) + mustSee.length;
  });
}

/** Reads that count more writes than had even begun when they ended. */
export function impossibleReads({ base, writes, reads }: History): Read[] {
  return reads.filter(
    (r) => r.value > (base.get(r.key) ?? 0) + writes.filter((w) => affects(w, r.key) && w.start <= r.end).length,
  );
}
