// The fault history checker (test/support/chaos/model.ts) on histories made by
// hand: pure logic, so each rule is shown to catch what it is for.
import { describe, expect, it } from "vitest";
import {
  allowed,
  bounds,
  check,
  type Fault,
  type History,
  random,
  rangesOf,
  type Write,
  writeOutcomeViolations,
} from "./support/chaos/model.ts";

const add = (id: number, start: number, end: number, extra: Partial<Write> = {}): Write => ({
  id,
  via: "rest",
  what: `add ${id}`,
  start,
  end,
  outcome: "ok",
  deltas: { "customer:1": 1, all: 1 },
  instance: 0,
  ...extra,
});

const history = (writes: Write[], reads: History["reads"], faults: Fault[] = []): History => ({
  base: new Map([
    ["customer:1", 10],
    ["all", 100],
  ]),
  writes,
  reads,
  streams: [],
  faults,
  final: new Map(),
  settledAt: 0,
});

const read = (start: number, value: number) => ({
  key: "customer:1" as const,
  via: "GET",
  instance: 1,
  start,
  end: start + 5,
  value,
});

describe("the fault history checker", () => {
  it("flags a read that began after an acknowledged write and doesn't count it", () => {
    const h = history([add(1, 0, 10)], [read(11, 10), read(11, 11)]);
    expect(check(h).map((v) => v.kind)).toEqual(["stale read"]);
  });

  it("allows either value to a read concurrent with a write, and flags one counting a write not yet begun", () => {
    const h = history([add(1, 0, 10), add(2, 50, 60)], [read(5, 10), read(5, 11), read(20, 12)]);
    expect(check(h).map((v) => v.kind)).toEqual(["impossible read"]);
  });

  it("gives a write made outside the app its pass bound, and the longer bound near a fault", () => {
    const psql = add(1, 0, 10, { via: "psql", instance: undefined });
    expect(allowed(history([psql], []), "customer:1", 10 + bounds.outside - 1, 400).lo).toBe(10);
    expect(allowed(history([psql], []), "customer:1", 10 + bounds.outside, 400).lo).toBe(11);
    const fault: Fault = { kind: "valkey-stopped", start: 100, end: 900 };
    expect(allowed(history([psql], [], [fault]), "customer:1", 10 + bounds.outside, 400).lo).toBe(10);
    expect(allowed(history([psql], [], [fault]), "customer:1", 10 + bounds.outsideUnderFault, 7000).lo).toBe(11);
  });

  it("counts a delete as maybe-down while unacknowledged, and a 503'd write never", () => {
    const remove = add(1, 0, 10, { deltas: { "customer:1": -1 }, outcome: "unknown" });
    const refused = add(2, 0, 10, { outcome: "failed" });
    expect(allowed(history([remove, refused], []), "customer:1", 20, 25)).toMatchObject({ lo: 9, hi: 10 });
  });

  it("holds an API write to its acknowledgement even when its writer lost Valkey, unless another fault hindered the appliers", () => {
    const write = add(1, 0, 10);
    const cut: Fault = { kind: "valkey-path-cut", instance: 0, start: 5, end: 500 };
    const silentApplier: Fault = { kind: "database-path-silent", instance: 2, start: 8, end: 900 };
    expect(allowed(history([write], [], [cut]), "customer:1", 20, 25).lo).toBe(11);
    expect(allowed(history([write], [], [cut, silentApplier]), "customer:1", 20, 25).lo).toBe(10);
    expect(allowed(history([write], [], [{ ...cut, instance: 2 }, silentApplier]), "customer:1", 20, 25).lo).toBe(11);
  });

  it("flags a live stream that goes back, starts stale or ends short of the database", () => {
    const h = history([add(1, 0, 10)], []);
    h.final.set("customer:1", 11);
    h.streams = [
      { key: "customer:1", instance: 0, openedAt: 20, events: [{ at: 30, count: 10 }], openAtEnd: true },
      {
        key: "customer:1",
        instance: 1,
        openedAt: 5,
        events: [
          { at: 6, count: 11 },
          { at: 40, count: 10 },
        ],
        openAtEnd: false,
      },
    ];
    expect(check(h).map((v) => v.kind)).toEqual(["stream stale", "stream did not settle", "stream went back"]);
  });

  it("requires one row per acknowledged write and none per 503", () => {
    const writes = [add(1, 0, 1), add(2, 0, 1, { outcome: "failed" }), add(3, 0, 1, { outcome: "unknown" })];
    const rows = new Map([
      ["add 1", 2],
      ["add 2", 1],
      ["add 3", 1],
    ]);
    expect(writeOutcomeViolations(writes, (w) => rows.get(w.what) ?? 0)).toHaveLength(2);
  });

  it("computes the same ranges with prefix sums as by counting every write", () => {
    const r = random(26);
    const outcomes = ["ok", "ok", "ok", "failed", "unknown"] as const;
    const writes = Array.from({ length: 300 }, (_, id) => {
      const start = r() * 10_000;
      return add(id, start, start + r() * 50, {
        via: r() < 0.3 ? "psql" : "rest",
        outcome: outcomes[Math.floor(r() * outcomes.length)],
        deltas: { "customer:1": r() < 0.2 ? -1 : 1, ...(r() < 0.5 ? { all: 1 } : {}) },
      });
    });
    const faults: Fault[] = [{ kind: "valkey-path-cut", instance: 0, start: 2000, end: 3000 }];
    const h = history(writes, [], faults);
    const range = rangesOf(h);
    for (let i = 0; i < 500; i++) {
      const start = r() * 11_000;
      const key = r() < 0.5 ? ("customer:1" as const) : ("all" as const);
      const { lo, hi } = allowed(h, key, start, start + r() * 30);
      expect(range(key, start, start + (0 as number))).toBeDefined();
      const end = start + 10;
      expect(range(key, start, end)).toEqual({
        lo: allowed(h, key, start, end).lo,
        hi: allowed(h, key, start, end).hi,
      });
      expect(lo).toBeLessThanOrEqual(hi);
    }
  });

  it("draws the same schedule from the same seed", () => {
    const [a, b, c] = [random(7), random(7), random(8)];
    const draw = (r: () => number) => Array.from({ length: 5 }, r);
    expect(draw(a)).toEqual(draw(b));
    expect(draw(random(7))).not.toEqual(draw(c));
  });
});
