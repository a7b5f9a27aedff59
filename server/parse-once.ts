// An input parser for tRPC that validates each input once: an input this
// process already validated (a REST route that validated its own body) is
// handed over as trusted and taken as it is instead of being parsed again.
// Only objects this process built are ever trusted, never one a client sent,
// so nothing from outside skips validation.
//
// The mark is kept on the object itself, under a symbol only this parser
// knows: nothing a client sends can carry it, no other schema's parser takes
// it for its own, and it dies with the object, with no table to grow and sweep.
import type { z } from "zod";

export interface ParseOnce<TSchema extends z.ZodType> {
  /** For `.input()`: typed like the schema; returns a trusted input as it is, parses anything else. */
  readonly parser: { _input: z.input<TSchema>; _output: z.output<TSchema>; parse(raw: unknown): z.output<TSchema> };
  /** Hands over a value already in the schema's output form (validated by this process) as an input. */
  trusted(value: z.output<TSchema> & object): z.input<TSchema>;
}

export function parseOnce<TSchema extends z.ZodType>(schema: TSchema): ParseOnce<TSchema> {
  type Out = z.output<TSchema>;
  type Marked = { [validated]?: Out };
  const validated = Symbol("validated input");
  const isObject = (value: unknown): value is object => typeof value === "object" && value !== null;
  return {
    parser: {
      _input: undefined as z.input<TSchema>,
      _output: undefined as Out,
      parse: (raw) =>
        isObject(raw) && Object.hasOwn(raw, validated) ? ((raw as Marked)[validated] as Out) : schema.parse(raw),
    },
    trusted(value) {
      // Not enumerable: serializers, loggers and cache keys never see it. An object that can't take it is parsed again.
      if (Object.isExtensible(value)) {
        Object.defineProperty(value, validated, { value, configurable: true, writable: true });
      }
      return value as z.input<TSchema>;
    },
  };
}
