// The parser tRPC is given validates each input once: a value this process
// already validated and handed over as trusted is taken as it is, anything
// else is parsed. Pure logic.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { parseOnce } from "../server/parse-once.ts";

/** A schema that counts its parses. */
function countingSchema() {
  let parses = 0;
  const schema = z.object({ customerid: z.number().int() }).refine(() => {
    parses++;
    return true;
  });
  return { schema, parses: () => parses };
}

describe("parseOnce", () => {
  it("gives tRPC's parser a trusted value as it is, without parsing it", () => {
    const { schema, parses } = countingSchema();
    const once = parseOnce(schema);
    const built = { customerid: 7 };
    expect(once.parser.parse(once.trusted(built))).toBe(built);
    expect(parses()).toBe(0);
  });

  it("parses an object it was never handed, however alike, and refuses an invalid one", () => {
    const { schema, parses } = countingSchema();
    const once = parseOnce(schema);
    once.trusted({ customerid: 7 });
    const alike = { customerid: 7 };
    expect(once.parser.parse(alike)).toEqual(alike);
    expect(parses()).toBe(1);
    expect(() => once.parser.parse({ customerid: "seven" })).toThrow();
  });

  it("does not take another schema's trusted value for its own", () => {
    const lenient = parseOnce(z.object({ customerid: z.string() }));
    const strict = parseOnce(z.object({ customerid: z.coerce.number().int() }));
    const value = lenient.trusted({ customerid: "seven" });
    expect(() => strict.parser.parse(value)).toThrow();
  });

  it("leaves no trace a serializer, a logger or a cache key could see", () => {
    const once = parseOnce(z.object({ customerid: z.number() }));
    const value = once.trusted({ customerid: 7 });
    expect(Object.keys(value)).toEqual(["customerid"]);
    expect(JSON.stringify(value)).toBe('{"customerid":7}');
    expect({ ...value }).toEqual({ customerid: 7 });
  });

  it("parses again a value that can't be marked", () => {
    const { schema, parses } = countingSchema();
    const once = parseOnce(schema);
    const frozen = once.trusted(Object.freeze({ customerid: 7 }));
    expect(once.parser.parse(frozen)).toEqual({ customerid: 7 });
    expect(parses()).toBe(1);
  });
});
