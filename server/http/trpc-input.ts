// A tRPC GET's `input` parameter as tRPC reads it, for the one route that
// answers a procedure's requests itself (count-stream.ts: orders.watchCount's
// plain form); whatever it can't read is left to tRPC.
import superjson from "superjson";

export const invalid = Symbol("invalid");

/** The `input` parameter as tRPC reads it (JSON, then superjson); `invalid` leaves the request to tRPC, which says what is wrong. */
export function trpcInput(input: string | undefined): unknown | typeof invalid {
  if (input === undefined) return undefined;
  try {
    return superjson.deserialize(JSON.parse(input));
  } catch {
    return invalid;
  }
}
