// Another app's use of the published client: every procedure, typed end to end.
// .ci/run type-checks this against the packed tarball with strict settings and
// no skipLibCheck; each @ts-expect-error must be an error or the check fails.
import {
  type AddOrderInput,
  type Client,
  createClient,
  type Order,
  type RouterInputs,
  type RouterOutputs,
} from "@dellstore/client";

const client: Client = createClient({ url: "http://127.0.0.1:8000", token: "a-token-of-16-chars" });

const everyone: RouterOutputs["orders"]["count"] = await client.orders.count.query();
const one: { count: number } = await client.orders.count.query({ customerId: 9999 });
const input: AddOrderInput = { customerId: 9999, netAmount: "23.00", tax: 2, orderDate: "2023-03-10" };
const order: Order = await client.orders.add.mutate(input);
const total: string = order.totalAmount;
const customer: number | null = order.customerId;
const months: RouterOutputs["orders"]["monthly"] = await client.orders.monthly.query({ year: 2004 });
const revenue: string | undefined = months[0]?.revenue;
const summary = await client.customers.summary.query({ customerId: 9999 });
const last: string | null = summary.lastOrderDate;
const countInput: RouterInputs["orders"]["count"] = { customerId: 1 };
const live = client.orders.watchCount.subscribe(
  { customerId: 9999 },
  { onData: ({ id, data }) => console.log(id, data.count satisfies number) },
);
live.unsubscribe();

// @ts-expect-error customerId is a number
await client.orders.count.query({ customerId: "9999" });
// @ts-expect-error tax is required
await client.orders.add.mutate({ customerId: 9999, netAmount: 23 });
// @ts-expect-error add is a mutation, not a query
await client.orders.add.query(input);
// @ts-expect-error customerId is a number here too
client.orders.watchCount.subscribe({ customerId: "9999" }, {});
// @ts-expect-error no such procedure
await client.orders.remove.mutate({ orderId: 1 });

console.log(everyone.count, one.count, total, customer, revenue, last, countInput);
