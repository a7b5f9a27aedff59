import { TRPCError } from "@trpc/server";
import { and, count, eq, gte, lt, sql, sum } from "drizzle-orm";
import { orders } from "../../db/schema.ts";
import { cached, invalidates } from "../cache/middleware.ts";
import { isForeignKeyViolation } from "../database-errors.ts";
import { addOrderInput, countOrdersInput, yearInput } from "../inputs.ts";
import { formatCents } from "../money.ts";
import { publicProcedure, router } from "../trpc.ts";
import { orderTags, tagsOfOrder } from "./tags.ts";

export const ordersRouter = router({
  count: publicProcedure
    .input(countOrdersInput)
    .use(
      cached({
        tags: (input) => [input?.customerId === undefined ? orderTags.all : orderTags.customer(input.customerId)],
      }),
    )
    .query(async ({ ctx, input }) => {
      const customerId = input?.customerId;
      const [row] = await ctx.db
        .select({ count: count() })
        .from(orders)
        .where(customerId === undefined ? undefined : eq(orders.customerId, customerId));
      return { count: row?.count ?? 0 };
    }),

  /** Orders and revenue per month of one year: the slow aggregate caching is for. */
  monthly: publicProcedure
    .input(yearInput)
    .use(cached({ tags: ({ year }) => [orderTags.year(year)], ttlSeconds: 600 }))
    .query(({ ctx, input: { year } }) => {
      const month = sql<string>`to_char(${orders.orderDate}, 'YYYY-MM')`;
      return ctx.db
        .select({ month, orders: count(), revenue: sql<string>`${sum(orders.totalAmount)}` })
        .from(orders)
        .where(and(gte(orders.orderDate, `${year}-01-01`), lt(orders.orderDate, `${year + 1}-01-01`)))
        .groupBy(month)
        .orderBy(month);
    }),

  add: publicProcedure
    .input(addOrderInput)
    .use(invalidates({ tags: (input) => tagsOfOrder(input) }))
    .mutation(async ({ ctx, input }) => {
      try {
        const [order] = await ctx.db
          .insert(orders)
          .values({
            customerId: input.customerId,
            orderDate: input.orderDate,
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
