// The client's published router type (client/api.ts, plain types) and the
// server's router agree on every procedure's input, output and error shape.
// Checked by the compiler (`npm run typecheck`); the test body only names them.
import type { inferRouterError, inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import { describe, expectTypeOf, it } from "vitest";
import type { AppRouter as PublishedRouter } from "../client/api.ts";
import type { AppRouter as ServerRouter } from "../server/routers/index.ts";

/** Each procedure's kind (query, mutation), by path. */
type Kinds<Record> = {
  [Key in keyof Record]: Record[Key] extends { _def: { type: infer Kind } } ? Kind : Kinds<Record[Key]>;
};

describe("the client's published router type", () => {
  it("has the server's procedures, each of the same kind", () => {
    expectTypeOf<Kinds<PublishedRouter["_def"]["record"]>>().toEqualTypeOf<Kinds<ServerRouter["_def"]["record"]>>();
  });
  it("has the server's inputs", () => {
    expectTypeOf<inferRouterInputs<PublishedRouter>>().toEqualTypeOf<inferRouterInputs<ServerRouter>>();
  });
  it("has the server's outputs", () => {
    expectTypeOf<inferRouterOutputs<PublishedRouter>>().toEqualTypeOf<inferRouterOutputs<ServerRouter>>();
  });
  it("has the server's error shape", () => {
    expectTypeOf<inferRouterError<PublishedRouter>>().toEqualTypeOf<inferRouterError<ServerRouter>>();
  });
});
