// Every cached query's cache policy, declared once: its input, the tags its
// result depends on, its TTL. The procedures (cachedQuery) and the HTTP hit
// path both read these.
import { declarePolicy, policyRegistry } from "../cache/policy.ts";
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

export const cachePolicies = policyRegistry([ordersCount, ordersMonthly, customersSummary]);
