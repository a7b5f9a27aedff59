// An input parser for tRPC that validates each input once: an input another
// part of this process already validated (the HTTP hit path, a REST route
// that validated its own body) is taken as it is instead of being parsed
// again. Only objects this process built are ever remembered, never one a
// client sent, so nothing from outside skips validation.
import type { z } from "zod";

const validated = new WeakMap<object, unknown>();

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
  const isObject = (value: unknown): value is object => typeof value === "object" && value !== null;
  return {
    parser: {
      _input: undefined as z.input<TSchema>,
      _output: undefined as Out,
      parse: (raw) => (isObject(raw) && validated.has(raw) ? (validated.get(raw) as Out) : schema.parse(raw)),
    },
    parse(raw) {
      const result = schema.safeParse(raw);
      if (!result.success) return undefined;
      if (isObject(raw)) validated.set(raw, result.data);
      return { input: result.data };
    },
    trusted(value) {
      validated.set(value, value);
      return value as z.input<TSchema>;
    },
  };
}
