// What procedures answer, as zod schemas: /openapi.json describes them, and
// `documented` (routers/documented.ts) makes the compiler prove that each
// procedure's resolver returns exactly this type.
import { z } from "zod";

const money = z
  .string()
  .regex(/^\d+\.\d{2}$/)
  .describe('an exact decimal amount, e.g. "25.00"');
const date = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);

export const countOutput = z.object({ count: z.number().int().min(0) });

export const monthlyOutput = z.array(
  z.object({ month: z.string().describe("YYYY-MM"), orders: z.number().int(), revenue: money }),
);

export const customerSummaryOutput = z.object({
  customerId: z.number().int(),
  orders: z.number().int(),
  totalSpent: money,
  lastOrderDate: date.nullable().describe("null when the customer has no orders"),
});

export const orderOutput = z.object({
  orderId: z.number().int(),
  orderDate: date,
  customerId: z.number().int().nullable().describe("null once the customer has been deleted"),
  netAmount: money,
  tax: money,
  totalAmount: money,
});
