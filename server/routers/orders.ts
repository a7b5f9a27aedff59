import { TRPCError } from "@trpc/server";
import { cachedQuery, invalidates } from "../cache/middleware.ts";
import { isForeignKeyViolation } from "../database-errors.ts";
import { addOrderInput } from "../inputs.ts";
import { formatCents } from "../money.ts";
import { parseOnce } from "../parse-once.ts";
import { router, writeProcedure } from "../trpc.ts";
import { ordersCount, ordersMonthly } from "./cache-policies.ts";
import { tagsOfOrder } from "./tags.ts";

// Years before 1000 need their leading zeros, or PostgreSQL reads "12-01-01" as 2012.
const yyyy = (year: number) => String(year).padStart(4, "0");

/** orders.add's input; the REST route hands over the order it validated itself (money already in cents). */
export const addOrder = parseOnce(addOrderInput);

export const ordersRouter = router({
  count: cachedQuery(ordersCount, async ({ ctx: { queries }, input }) => {
    const [row] =
      input?.customerId === undefined
        ? await queries.countOrders.execute()
        : await queries.countCustomerOrders.execute({ customerId: input.customerId });
    return { count: row?.count ?? 0 };
  }),

  /** Orders and revenue per month of one year: the slow aggregate caching is for. */
  monthly: cachedQuery(ordersMonthly, ({ ctx: { queries }, input: { year } }) =>
    queries.monthly.execute({ from: `${yyyy(year)}-01-01`, to: `${yyyy(year + 1)}-01-01` }),
  ),

  add: writeProcedure
    .input(addOrder.parser)
    .use(invalidates({ tags: (input) => tagsOfOrder(input) }))
    .mutation(async ({ ctx: { queries }, input }) => {
      try {
        const [order] = await queries.insertOrder.execute({
          customerId: input.customerId,
          orderDate: input.orderDate,
          netAmount: formatCents(input.netAmount),
          tax: formatCents(input.tax),
          totalAmount: formatCents(input.netAmount + input.tax),
        });
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
