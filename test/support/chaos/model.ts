// The fault history test's model and checker (pure: no I/O). Every operation
// is recorded with its start and end (ms on one monotonic clock); a write
// carries what it changes of each count it affects (+1, -1), and its outcome.
// The checker then verifies, for every read and every live event, that its
// value lies between what every write that must be visible and none, or all,
// of those that may be visible would give: so a read older than a write it
// must see, or counting one it can't have, is a violation. Bounds are stated
// once, here, and README.md's guarantees table quotes them.

/** A count the history follows: a customer's, the total, or a year's orders. */
export type Key = `customer:${number}` | "all" | `year:${number}`;

/**
 * "ok": acknowledged (200) or committed; "failed": proven not stored (503, an
 * ERROR from PostgreSQL); "unknown": may or may not have happened.
 */
export type Outcome = "ok" | "failed" | "unknown";

export interface Write {
  id: number;
  via: "rest" | "trpc" | "psql";
  what: string;
  start: number;
  end: number;
  outcome: Outcome;
  deltas: Partial<Record<Key, number>>;
  /** The instance that acknowledged it (API writes). */
  instance?: number;
}

export interface Read {
  key: Key;
  via: string;
  instance: number;
  start: number;
  end: number;
  value: number;
}

/** One live stream: when it was opened (a read that starts then), on which instance, and what it was sent. */
export interface Stream {
  key: Key;
  instance: number;
  openedAt: number;
  events: { at: number; count: number }[];
  /** Still open when the history ended: it must have reached the database's final count. */
  openAtEnd: boolean;
}

export type FaultKind =
  | "valkey-killed-empty"
  | "valkey-restored-older"
  | "valkey-client-killed"
  | "valkey-stopped"
  | "postgres-stopped"
  | "database-path-silent"
  | "valkey-path-cut"
  | "instance-killed"
  | "orders-locked";

export interface Fault {
  kind: FaultKind;
  /** The instance it hits, for faults of one instance. */
  instance?: number;
  start: number;
  end: number;
}

export interface History {
  base: Map<Key, number>;
  writes: Write[];
  reads: Read[];
  streams: Stream[];
  faults: Fault[];
  /** The database's counts once everything settled. */
  final: Map<Key, number>;
  /** When the final counts were read (every stream must have shown them by then). */
  settledAt: number;
}

/**
 * How soon a write must be visible to a read that starts after it (ms after
 * its acknowledgement or commit). Stated once; README.md's guarantees table
 * says the same.
 */
export const bounds = {
  /**
   * An API write acknowledged (200), by any instance: at once. A writer whose
   * own bump could not reach Valkey answers only once an applier has applied
   * its change (server/cache/applier.ts, handOff).
   */
  acknowledged: 0,
  /** A write made outside the app (psql), no fault near it: one applier pass on a saturated machine. */
  outside: 300,
  /**
   * A write made outside the app while the applier is replaced (killed, or
   * stopping in a rolling restart: it hands its lock over at once): another
   * instance's election and first pass, beside a restarting process's
   * start-up on a saturated machine.
   */
  handover: 1000,
  /**
   * A write made outside the app while a fault lasts (or within this long
   * before it ends): a silent applier is replaced after 2.5 s without a pass,
   * and after 5 s without one every instance bypasses its cache. Also an API
   * write whose writer lost Valkey while another fault hindered the appliers
   * (its hand-off gives up after 1 s).
   */
  outsideUnderFault: 6000,
} as const;

/** Faults during which a writer's own bump may be lost while other instances still read Valkey. */
const losesWritersBump = new Set<FaultKind>(["valkey-path-cut", "valkey-client-killed"]);
/** How long after such a fault ends the writer may still be reconnecting (its bumps still lost). */
const reconnectMs = 3000;

const overlaps = (fault: Fault, from: number, to: number) => fault.start <= to && fault.end >= from;

/** How long after its end `write` may stay invisible, given the faults around it. */
export function boundOf(write: Write, faults: readonly Fault[]): number {
  if (write.via !== "psql") {
    // Its hand-off to an applier is bounded only while no other fault hinders the appliers.
    const lost = faults.filter(
      (f) =>
        losesWritersBump.has(f.kind) &&
        (f.instance === undefined || f.instance === write.instance) &&
        overlaps(f, write.start - reconnectMs, write.end),
    );
    const hindered =
      lost.length > 0 && faults.some((f) => !lost.includes(f) && overlaps(f, write.start - reconnectMs, write.end));
    return hindered ? bounds.outsideUnderFault : bounds.acknowledged;
  }
  const near = faults.some((f) => overlaps(f, write.start - bounds.outsideUnderFault, write.end + bounds.outside));
  return near ? bounds.outsideUnderFault : bounds.outside;
}

export interface Violation {
  kind: "stale read" | "impossible read" | "stream went back" | "stream stale" | "stream did not settle";
  key: Key;
  at: number;
  detail: string;
  /** The writes that decided it (those it must see but doesn't, for a stale read). */
  writes: Write[];
}

/** The range a read of `key` over [start, end] may return, and the writes it must see. */
export function allowed(history: Pick<History, "base" | "writes" | "faults">, key: Key, start: number, end: number) {
  let lo = history.base.get(key) ?? 0;
  let hi = lo;
  const mustSee: Write[] = [];
  for (const w of history.writes) {
    const delta = w.deltas[key];
    if (!delta || w.outcome === "failed" || w.start > end) continue;
    if (w.outcome === "ok" && w.end + boundOf(w, history.faults) <= start) {
      lo += delta;
      hi += delta;
      mustSee.push(w);
    } else {
      lo += Math.min(0, delta);
      hi += Math.max(0, delta);
    }
  }
  return { lo, hi, mustSee };
}

/**
 * The same ranges as `allowed`, for many reads of one history: a write counts
 * min(0, δ) (lo) or max(0, δ) (hi) once it has begun, and the rest of its δ
 * once it must be visible, so each bound is two prefix sums over the writes
 * sorted by those times. A ten-minute history has ~10^5 writes and reads.
 */
export function rangesOf(history: Pick<History, "base" | "writes" | "faults">): (
  key: Key,
  start: number,
  end: number,
) => {
  lo: number;
  hi: number;
} {
  const byKey = new Map<Key, { begun: Timeline; visible: Timeline }>();
  for (const w of history.writes) {
    if (w.outcome === "failed") continue;
    const visibleAt = w.outcome === "ok" ? w.end + boundOf(w, history.faults) : Number.POSITIVE_INFINITY;
    for (const [key, delta] of Object.entries(w.deltas) as [Key, number][]) {
      if (!delta) continue;
      const lines = byKey.get(key) ?? { begun: new Timeline(), visible: new Timeline() };
      byKey.set(key, lines);
      lines.begun.add(w.start, Math.min(0, delta), Math.max(0, delta));
      lines.visible.add(visibleAt, Math.max(0, delta), Math.min(0, delta));
    }
  }
  for (const lines of byKey.values()) {
    lines.begun.seal();
    lines.visible.seal();
  }
  return (key, start, end) => {
    const base = history.base.get(key) ?? 0;
    const lines = byKey.get(key);
    if (!lines) return { lo: base, hi: base };
    const [beganLo, beganHi] = lines.begun.upTo(end);
    const [visibleLo, visibleHi] = lines.visible.upTo(start);
    return { lo: base + beganLo + visibleLo, hi: base + beganHi + visibleHi };
  };
}

/** Events at times with two amounts each; sums of both over the events up to a time. */
class Timeline {
  private events: [number, number, number][] = [];
  private times: number[] = [];
  private sums: [number, number][] = [[0, 0]];

  add(at: number, a: number, b: number): void {
    this.events.push([at, a, b]);
  }

  seal(): void {
    this.events.sort((x, y) => x[0] - y[0]);
    this.times = this.events.map((e) => e[0]);
    for (const [, a, b] of this.events) {
      const [sa, sb] = this.sums.at(-1) as [number, number];
      this.sums.push([sa + a, sb + b]);
    }
  }

  upTo(at: number): [number, number] {
    let lo = 0;
    let hi = this.times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.times[mid] as number) <= at) lo = mid + 1;
      else hi = mid;
    }
    return this.sums[lo] as [number, number];
  }
}

export function check(history: History): Violation[] {
  const violations: Violation[] = [];
  const range = rangesOf(history);
  for (const read of history.reads) {
    const { lo, hi } = range(read.key, read.start, read.end);
    if (read.value < lo || read.value > hi) {
      const { mustSee } = allowed(history, read.key, read.start, read.end);
      violations.push({
        kind: read.value < lo ? "stale read" : "impossible read",
        key: read.key,
        at: read.start,
        detail: `${read.via} on instance ${read.instance} read ${read.value} over [${fmt(read.start)}, ${fmt(read.end)}] ms; allowed ${lo}..${hi}`,
        writes: mustSee.slice(-5),
      });
    }
  }
  for (const stream of history.streams) {
    let last = -Infinity;
    stream.events.forEach((event, i) => {
      if (event.count < last) {
        violations.push({
          kind: "stream went back",
          key: stream.key,
          at: event.at,
          detail: `a stream on instance ${stream.instance} went from ${last} to ${event.count}`,
          writes: [],
        });
      }
      last = Math.max(last, event.count);
      // The first event is a read that started when the stream was opened.
      const { lo } = range(stream.key, stream.openedAt, event.at);
      if (i === 0 && event.count < lo) {
        const { mustSee } = allowed(history, stream.key, stream.openedAt, event.at);
        violations.push({
          kind: "stream stale",
          key: stream.key,
          at: event.at,
          detail: `a stream opened on instance ${stream.instance} at ${fmt(stream.openedAt)} ms began at ${event.count}; allowed from ${lo}`,
          writes: mustSee.slice(-5),
        });
      }
    });
    const final = history.final.get(stream.key);
    const lastEvent = stream.events.at(-1);
    if (stream.openAtEnd && final !== undefined && lastEvent?.count !== final) {
      violations.push({
        kind: "stream did not settle",
        key: stream.key,
        at: history.settledAt,
        detail: `a stream on instance ${stream.instance} ended at ${lastEvent?.count ?? "nothing"}; the database has ${final}`,
        writes: [],
      });
    }
  }
  return violations;
}

/** Which stored rows each API write left: exactly one if acknowledged, none if answered 503. */
export function writeOutcomeViolations(writes: readonly Write[], stored: (write: Write) => number): string[] {
  const problems: string[] = [];
  for (const w of writes) {
    if (w.via === "psql") continue;
    const rows = stored(w);
    if (w.outcome === "ok" && rows !== 1) problems.push(`write ${w.id} (${w.what}) was acknowledged; ${rows} rows`);
    if (w.outcome === "failed" && rows !== 0) problems.push(`write ${w.id} (${w.what}) was answered 503; ${rows} rows`);
    if (w.outcome === "unknown" && rows > 1) problems.push(`write ${w.id} (${w.what}) is unsettled; ${rows} rows`);
  }
  return problems;
}

const fmt = (ms: number) => Math.round(ms);

/** A small seeded generator (mulberry32): the same seed, the same schedule. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Describes a violation with the operations and faults around it, for the failure message. */
export function explain(history: History, violation: Violation, seed: number): string {
  const around = (t: number) => t >= violation.at - 1500 && t <= violation.at + 500;
  const lines = [`seed ${seed}: ${violation.kind} of ${violation.key}: ${violation.detail}`];
  for (const w of violation.writes) lines.push(`  must see: ${describeWrite(w)}`);
  for (const f of history.faults.filter(
    (f) => around(f.start) || around(f.end) || overlaps(f, violation.at, violation.at),
  )) {
    lines.push(
      `  fault ${f.kind}${f.instance === undefined ? "" : ` on instance ${f.instance}`} [${fmt(f.start)}, ${fmt(f.end)}]`,
    );
  }
  for (const w of history.writes.filter((w) => w.deltas[violation.key] && (around(w.start) || around(w.end)))) {
    lines.push(`  write ${describeWrite(w)}`);
  }
  return lines.join("\n");
}

const describeWrite = (w: Write) =>
  `#${w.id} ${w.via} ${w.what} [${fmt(w.start)}, ${fmt(w.end)}] ${w.outcome}${w.instance === undefined ? "" : ` via instance ${w.instance}`}`;
