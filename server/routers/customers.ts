import { TRPCError } from "@trpc/server";
import { customerSummaryOutput } from "../outputs.ts";
import { customersSummary } from "./cache-policies.ts";
import { cachedQuery } from "./cached-query.ts";

export const customersProcedures = {
  summary: cachedQuery(
    customersSummary,
    {
      summary: "A customer's orders at a glance: how many, total spent, the last order's date (cached)",
      output: customerSummaryOutput,
      errors: { NOT_FOUND: "no such customer" },
      example: { customerId: 9999 },
    },
    async ({ ctx: { queries }, input: { customerId } }) => {
      const [summary] = await queries.customerSummary.execute({ customerId });
      if (!summary) throw new TRPCError({ code: "NOT_FOUND", message: `Customer ${customerId} does not exist.` });
      return summary;
    },
  ),
};
