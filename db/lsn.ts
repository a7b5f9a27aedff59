// PostgreSQL WAL positions (pg_lsn) as text: "X/Y", two hexadecimal numbers of
// up to 32 bits each, the high and low halves of a 64-bit byte position. As
// text they don't sort ("0/F" > "0/10"), so they are compared as numbers.

const lsnText = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** Whether `text` is a WAL position as PostgreSQL writes one ("16/B374D848"). */
export function isLsn(text: string): boolean {
  return lsnText.test(text);
}

/** The byte position of a WAL position; throws a RangeError for anything that isn't one. */
export function parseLsn(text: string): bigint {
  const match = lsnText.exec(text);
  if (!match) throw new RangeError(`not a WAL position (like 16/B374D848): ${JSON.stringify(text.slice(0, 40))}`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** The WAL position of a byte position, as PostgreSQL writes it (upper-case hex, no leading zeros). */
export function formatLsn(position: bigint): string {
  return `${(position >> 32n).toString(16).toUpperCase()}/${(position & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Negative when `a` is before `b`, 0 when they are the same position, positive when `a` is after. */
export function compareLsn(a: string, b: string): number {
  const difference = parseLsn(a) - parseLsn(b);
  return difference < 0n ? -1 : difference > 0n ? 1 : 0;
}
