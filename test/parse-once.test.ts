// The parser tRPC is given validates each input once: what this process
// already parsed is taken as it is, anything else is parsed. Pure logic.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { parseOnce } from "../server/parse-once.ts";

/** A schema that counts its parses, with a transform, so a remembered output is told from a fresh one. */
function countingSchema() {
  let parses = 0;
  const schema = z.object({ customerid: z.coerce.number().int() }).transform((value) => {
    parses++;
    return { ...value, parsedAt: parses };
  });
  return { schema, parses: () => parses };
}

describe("parseOnce", () => {
  it("gives tRPC's parser the very output the first parse made, without parsing again", () => {
    const { schema, parses } = countingSchema();
    const once = parseOnce(schema);
    const raw = { customerid: "7" };
    const first = once.parse(raw);
    expect(first).toEqual({ input: { customerid: 7, parsedAt: 1 } });
    expect(once.parser.parse(raw)).toBe(first?.input);
    expect(parses()).toBe(1);
  });

  it("parses an object it never saw, however alike, and refuses an invalid one", () => {
    const { schema, parses } = countingSchema();
    const once = parseOnce(schema);
    once.parse({ customerid: "7" });
    expect(once.parser.parse({ customerid: "7" })).toEqual({ customerid: 7, parsedAt: 2 });
    expect(parses()).toBe(2);
    expect(once.parse({ customerid: "seven" })).toBeUndefined();
    expect(() => once.parser.parse({ customerid: "seven" })).toThrow();
  });

  it("does not take another schema's parse for its own", () => {
    const lenient = parseOnce(z.object({ customerid: z.string() }));
    const strict = parseOnce(z.object({ customerid: z.coerce.number().int() }));
    const raw = { customerid: "seven" };
    expect(lenient.parse(raw)).toEqual({ input: raw });
    expect(() => strict.parser.parse(raw)).toThrow();
  });

  it("leaves no trace a serializer, a logger or a cache key could see", () => {
    const once = parseOnce(z.object({ customerid: z.number() }));
    const raw = { customerid: 7 };
    once.parse(raw);
    expect(Object.keys(raw)).toEqual(["customerid"]);
    expect(JSON.stringify(raw)).toBe('{"customerid":7}');
    expect({ ...raw }).toEqual({ customerid: 7 });
  });

  it("parses again an input that can't be marked, and remembers a trusted value as itself", () => {
    const { schema, parses } = countingSchema();
    const once = parseOnce(schema);
    const frozen = Object.freeze({ customerid: "7" });
    expect(once.parse(frozen)).toEqual({ input: { customerid: 7, parsedAt: 1 } });
    expect(once.parser.parse(frozen)).toEqual({ customerid: 7, parsedAt: 2 });
    expect(parses()).toBe(2);

    const plain = parseOnce(z.object({ customerid: z.number() }));
    const built = { customerid: 9 };
    expect(plain.parser.parse(plain.trusted(built))).toBe(built);
  });
});
