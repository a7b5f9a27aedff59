// Each procedure is declared with what a caller needs to know of it: its kind,
// its input and output schemas, a summary, its own errors and an example. The
// router is made of a plain record of such procedures (routers/index.ts), so
// everything that describes the API walks that record: /openapi.json, the
// methods a tRPC path allows (405 with Allow). A procedure not declared this
// way stops start-up, so none can be served undocumented. tRPC's public API
// can't tell a procedure's kind or schemas, hence this registry; the compiler
// proves it agrees with each procedure (its kind, input and output types).
import type {
  AnyMutationProcedure,
  AnyProcedure,
  AnyQueryProcedure,
  AnySubscriptionProcedure,
  inferProcedureInput,
  inferProcedureOutput,
  TRPC_ERROR_CODE_KEY,
} from "@trpc/server";
import type { z } from "zod";

export type ProcedureKind = "query" | "mutation" | "subscription";

/** What the document says of a procedure beyond its kind and input. */
export interface About<TOutput extends z.ZodType = z.ZodType, TExample = unknown> {
  summary: string;
  /** What it answers; its type must be the resolver's. */
  output: TOutput;
  /** The errors particular to this procedure, by code, and what each means here (those of every call are implied). */
  errors?: Partial<Record<TRPC_ERROR_CODE_KEY, string>>;
  /** A valid input, for the docs' "try it out". */
  example: TExample;
}

export interface ProcedureDoc extends About {
  kind: ProcedureKind;
  input: z.ZodType;
}

/** The router's definition: procedures, nested in plain objects by path. */
export interface ProcedureRecord {
  readonly [key: string]: AnyProcedure | ProcedureRecord;
}

const docs = new WeakMap<AnyProcedure, ProcedureDoc>();

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type KindOf<P> = P extends AnyQueryProcedure
  ? "query"
  : P extends AnyMutationProcedure
    ? "mutation"
    : P extends AnySubscriptionProcedure
      ? "subscription"
      : never;
/** What a call answers: a subscription's output is each value it yields. */
type OutputOf<P extends AnyProcedure> =
  inferProcedureOutput<P> extends AsyncIterable<infer Item> ? Item : inferProcedureOutput<P>;
/** Compiles only when the schemas' types are the procedure's own. */
export type Agrees<TActual, TDeclared> =
  Same<TActual, TDeclared> extends true
    ? unknown
    : { "the declared schema's type differs from the procedure's": never };

/** Declares `procedure` as the document will describe it; returns it unchanged. */
export function documented<
  P extends AnyQueryProcedure | AnyMutationProcedure | AnySubscriptionProcedure,
  TIn extends z.ZodType,
  TOut extends z.ZodType,
>(
  doc: About<TOut, z.input<TIn>> & { kind: KindOf<P>; input: TIn } & Agrees<inferProcedureInput<P>, z.input<TIn>> &
    Agrees<OutputOf<P>, z.output<TOut>>,
  procedure: P,
): P {
  return declare(doc, procedure);
}

/** For builders (cachedQuery) that check the types themselves. */
export function declare<P extends AnyProcedure>(doc: ProcedureDoc, procedure: P): P {
  docs.set(procedure, doc);
  return procedure;
}

/** Every procedure in `record`, by its dotted path; throws for one declared otherwise. */
export function procedureDocs(record: ProcedureRecord): ReadonlyMap<string, ProcedureDoc> {
  const found = new Map<string, ProcedureDoc>();
  const walk = (level: ProcedureRecord, prefix: string) => {
    for (const [key, value] of Object.entries(level)) {
      const path = `${prefix}${key}`;
      if (typeof value !== "function") {
        walk(value, `${path}.`);
        continue;
      }
      const doc = docs.get(value);
      if (!doc) {
        throw new Error(
          `${path} is not a declared procedure: build it with cachedQuery() (server/routers/cached-query.ts) or documented() (server/routers/documented.ts), in a plain object, not a nested router()`,
        );
      }
      found.set(path, doc);
    }
  };
  walk(record, "");
  return found;
}

/** The methods a single procedure answers (HEAD with GET; a subscription is a GET answered as SSE). */
export function methodsOf(kind: ProcedureKind): readonly string[] {
  return kind === "mutation" ? ["POST"] : ["GET", "HEAD"]; // a subscription is a GET (server-sent events)
}
