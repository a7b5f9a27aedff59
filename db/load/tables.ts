// What every loader does around its data: refuse to mix datasets, and leave
// the serial sequences past the loaded ids so the next INSERT gets a fresh one.

export const loadedTables = ["customers", "orders"] as const;
export type LoadedTable = (typeof loadedTables)[number];

export const resetTablesSql = "TRUNCATE orders, customers RESTART IDENTITY";

export const advanceSequencesSql = `SELECT
  setval(pg_get_serial_sequence('customers', 'customerid'), (SELECT coalesce(max(customerid), 0) + 1 FROM customers), false),
  setval(pg_get_serial_sequence('orders', 'orderid'), (SELECT coalesce(max(orderid), 0) + 1 FROM orders), false)`;

export class TablesNotEmptyError extends Error {
  override name = "TablesNotEmptyError";
  constructor(counts: Record<LoadedTable, number>) {
    super(
      `refusing to load: customers holds ${counts.customers} rows and orders ${counts.orders}; ` +
        "pass --reset to empty both tables first",
    );
  }
}

/** Throws unless both tables are empty. */
export function assertEmpty(counts: Record<LoadedTable, number>): void {
  if (counts.customers > 0 || counts.orders > 0) throw new TablesNotEmptyError(counts);
}
