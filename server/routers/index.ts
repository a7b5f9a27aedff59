import { createCallerFactory, router } from "../trpc.ts";
import { ordersRouter } from "./orders.ts";

export const appRouter = router({
  orders: ordersRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
