// Money is exact: amounts travel as decimal strings ("25.30") and are added as
// integer cents, so 23.1 + 2.2 is 25.30, never 25.299999999999997.

/** numeric(12,2) holds at most 9,999,999,999.99. */
export const maxCents = 10n ** 12n - 1n;

const decimal = /^(0|[1-9]\d*)(?:\.(\d{1,2}))?$/;

/** Cents of a non-negative amount with at most two decimals, or undefined if it is not one. */
export function parseCents(value: number | string): bigint | undefined {
  const text = typeof value === "number" ? String(value) : value;
  const match = decimal.exec(text);
  if (!match) return undefined;
  const [, units = "0", fraction = ""] = match;
  return BigInt(units) * 100n + BigInt(fraction.padEnd(2, "0"));
}

export function formatCents(cents: bigint): string {
  const units = cents / 100n;
  const fraction = (cents % 100n).toString().padStart(2, "0");
  return `${units}.${fraction}`;
}
