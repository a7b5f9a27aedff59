import { createCallerFactory, router } from "../trpc.ts";
import { customersRouter } from "./customers.ts";
import { ordersRouter } from "./orders.ts";

export const appRouter = router({
  orders: ordersRouter,
  customers: customersRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
