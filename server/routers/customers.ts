import { TRPCError } from "@trpc/server";
import { cachedQuery } from "../cache/middleware.ts";
import { router } from "../trpc.ts";
import { customersSummary } from "./cache-policies.ts";

export const customersRouter = router({
  /** A customer's orders at a glance: how many, total spent, the last order's date (null if none). */
  summary: cachedQuery(customersSummary, async ({ ctx: { queries }, input: { customerId } }) => {
    const [summary] = await queries.customerSummary.execute({ customerId });
    if (!summary) throw new TRPCError({ code: "NOT_FOUND", message: `Customer ${customerId} does not exist.` });
    return summary;
  }),
});
