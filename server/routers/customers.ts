import { TRPCError } from "@trpc/server";
import { count, eq, max, sql, sum } from "drizzle-orm";
import { customers, orders } from "../../db/schema.ts";
import { cached } from "../cache/middleware.ts";
import { customerInput } from "../inputs.ts";
import { publicProcedure, router } from "../trpc.ts";
import { orderTags } from "./tags.ts";

export const customersRouter = router({
  /** A customer's orders at a glance: how many, total spent, the last order's date (null if none). */
  summary: publicProcedure
    .input(customerInput)
    .use(cached({ tags: ({ customerId }) => [orderTags.customer(customerId)] }))
    .query(async ({ ctx, input: { customerId } }) => {
      const [summary] = await ctx.db
        .select({
          customerId: customers.customerId,
          orders: count(orders.orderId),
          totalSpent: sql<string>`coalesce(${sum(orders.totalAmount)}, 0.00)`,
          lastOrderDate: max(orders.orderDate),
        })
        .from(customers)
        .leftJoin(orders, eq(orders.customerId, customers.customerId))
        .where(eq(customers.customerId, customerId))
        .groupBy(customers.customerId);
      if (!summary) throw new TRPCError({ code: "NOT_FOUND", message: `Customer ${customerId} does not exist.` });
      return summary;
    }),
});
