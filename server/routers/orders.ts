import { TRPCError } from "@trpc/server";
import { count, eq, sql } from "drizzle-orm";
import { orders } from "../../db/schema.ts";
import { isForeignKeyViolation } from "../database-errors.ts";
import { addOrderInput, countOrdersInput } from "../inputs.ts";
import { formatCents } from "../money.ts";
import { publicProcedure, router } from "../trpc.ts";

export const ordersRouter = router({
  count: publicProcedure.input(countOrdersInput).query(async ({ ctx, input }) => {
    const customerId = input?.customerId;
    const [row] = await ctx.db
      .select({ count: count() })
      .from(orders)
      .where(customerId === undefined ? undefined : eq(orders.customerId, customerId));
    return { count: row?.count ?? 0 };
  }),

  add: publicProcedure.input(addOrderInput).mutation(async ({ ctx, input }) => {
    try {
      const [order] = await ctx.db
        .insert(orders)
        .values({
          customerId: input.customerId,
          orderDate: input.orderDate ?? sql`CURRENT_DATE`,
          netAmount: formatCents(input.netAmount),
          tax: formatCents(input.tax),
          totalAmount: formatCents(input.netAmount + input.tax),
        })
        .returning();
      if (!order) throw new Error("INSERT … RETURNING returned no row");
      return order;
    } catch (error) {
      if (isForeignKeyViolation(error)) {
        throw new TRPCError({ code: "NOT_FOUND", message: `Customer ${input.customerId} does not exist.` });
      }
      throw error;
    }
  }),
});
