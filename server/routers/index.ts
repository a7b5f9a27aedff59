import { createCallerFactory, router } from "../trpc.ts";
import { customersProcedures } from "./customers.ts";
import type { ProcedureRecord } from "./documented.ts";
import { ordersProcedures } from "./orders.ts";

/** The API: every procedure by path, each declared for the document (documented.ts). */
export const procedures = {
  orders: ordersProcedures,
  customers: customersProcedures,
} satisfies ProcedureRecord;

export const appRouter = router(procedures);

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
