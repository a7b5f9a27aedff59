// An input parser for tRPC that validates each input once: an input another
// part of this process already validated (a REST route that validated its
// own body) is taken as it is instead of being parsed again. Only objects this process built are ever remembered, never one a
// client sent, so nothing from outside skips validation.
//
// The parse is kept on the object itself, under a symbol only this parser
// knows: nothing a client sends can carry it, no other schema's parser takes
// it for its own (one WeakMap shared by every schema did), and it dies with
// the object, with no table to grow and sweep on every hit.
import type { z } from "zod";

export interface ParseOnce<TSchema extends z.ZodType> {
  /** For `.input()`: typed like the schema; returns a remembered input as it is. */
  readonly parser: { _input: z.input<TSchema>; _output: z.output<TSchema>; parse(raw: unknown): z.output<TSchema> };
  /** Parses `raw`, remembering the result for `parser` when `raw` is an object; undefined if invalid. */
  parse(raw: unknown): { input: z.output<TSchema> } | undefined;
  /** Hands over a value already in the schema's output form (validated by this process) as an input. */
  trusted(value: z.output<TSchema> & object): z.input<TSchema>;
}

export function parseOnce<TSchema extends z.ZodType>(schema: TSchema): ParseOnce<TSchema> {
  type Out = z.output<TSchema>;
  type Marked = { [validated]?: Out };
  const validated = Symbol("validated input");
  const isObject = (value: unknown): value is object => typeof value === "object" && value !== null;
  // Not enumerable: serializers, loggers and cache keys never see it. An object that can't take it is parsed again.
  const remember = (raw: unknown, output: Out) => {
    if (isObject(raw) && Object.isExtensible(raw)) {
      Object.defineProperty(raw, validated, { value: output, configurable: true, writable: true });
    }
  };
  return {
    parser: {
      _input: undefined as z.input<TSchema>,
      _output: undefined as Out,
      parse: (raw) =>
        isObject(raw) && Object.hasOwn(raw, validated) ? ((raw as Marked)[validated] as Out) : schema.parse(raw),
    },
    parse(raw) {
      const result = schema.safeParse(raw);
      if (!result.success) return undefined;
      remember(raw, result.data);
      return { input: result.data };
    },
    trusted(value) {
      remember(value, value);
      return value as z.input<TSchema>;
    },
  };
}
