import { describe, expect, it } from "vitest";
import { formatCents, maxCents, parseCents } from "../server/money.ts";

describe("money", () => {
  it.each([
    [23.1, 2310n],
    ["23.10", 2310n],
    [0, 0n],
    ["0.5", 50n],
    [9_999_999_999.99, 999_999_999_999n],
  ])("reads %j as %i cents", (input, cents) => {
    expect(parseCents(input)).toBe(cents);
  });

  it.each([-1, 1.001, 0.1 + 0.2, "1e3", "", " 1", "1.", ".5", "01", Number.NaN, Number.POSITIVE_INFINITY, "1,5"])(
    "refuses %j",
    (input) => {
      expect(parseCents(input)).toBeUndefined();
    },
  );

  it("adds exactly", () => {
    expect(formatCents((parseCents(23.1) ?? 0n) + (parseCents(2.2) ?? 0n))).toBe("25.30");
    expect(formatCents(maxCents)).toBe("9999999999.99");
    expect(formatCents(5n)).toBe("0.05");
  });
});
