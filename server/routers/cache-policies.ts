// Every cached query's cache policy, declared once: its input, the tags its
// result depends on, its TTL. The procedures (cachedQuery) read these, and
// live counts take the count's tag from ordersCount (server/app.ts).
import { declarePolicy } from "../cache/policy.ts";
import { countOrdersInput, customerInput, yearInput } from "../inputs.ts";
import { orderTags } from "./tags.ts";

export const ordersCount = declarePolicy({
  procedure: "orders.count",
  input: countOrdersInput,
  tags: (input) => [input?.customerId === undefined ? orderTags.all : orderTags.customer(input.customerId)],
});

export const ordersMonthly = declarePolicy({
  procedure: "orders.monthly",
  input: yearInput,
  tags: ({ year }) => [orderTags.year(year)],
  ttlSeconds: 600,
});

export const customersSummary = declarePolicy({
  procedure: "customers.summary",
  input: customerInput,
  tags: ({ customerId }) => [orderTags.customer(customerId)],
});
