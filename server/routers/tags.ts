// Cache tags: the names cached queries depend on and writes invalidate.
export const orderTags = {
  /** Any order at all. */
  all: "orders:all",
  /** One customer's orders. */
  customer: (customerId: number) => `orders:customer:${customerId}`,
  /** Orders dated in one year. */
  year: (year: number) => `orders:year:${year}`,
};

/** Everything one order's insertion (or deletion) changes. */
export function tagsOfOrder(order: { customerId: number | null; orderDate: string }): string[] {
  const tags = [orderTags.all, orderTags.year(Number(order.orderDate.slice(0, 4)))];
  if (order.customerId !== null) tags.push(orderTags.customer(order.customerId));
  return tags;
}
