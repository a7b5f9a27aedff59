import { TRPCError } from "@trpc/server";
import { cached } from "../cache/middleware.ts";
import { customerInput } from "../inputs.ts";
import { publicProcedure, router } from "../trpc.ts";
import { orderTags } from "./tags.ts";

export const customersRouter = router({
  /** A customer's orders at a glance: how many, total spent, the last order's date (null if none). */
  summary: publicProcedure
    .input(customerInput)
    .use(cached({ tags: ({ customerId }) => [orderTags.customer(customerId)] }))
    .query(async ({ ctx: { queries }, input: { customerId } }) => {
      const [summary] = await queries.customerSummary.execute({ customerId });
      if (!summary) throw new TRPCError({ code: "NOT_FOUND", message: `Customer ${customerId} does not exist.` });
      return summary;
    }),
});
