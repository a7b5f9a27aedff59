// What every loader does around its data: refuse to mix datasets, and leave
// the serial sequences past the loaded ids so the next INSERT gets a fresh one.

export const loadedTables = ["customers", "orders"] as const;
export type LoadedTable = (typeof loadedTables)[number];

// Loads run as long as their data needs, past the pool's statement timeout (this transaction only).
export const noStatementTimeoutSql = "SET LOCAL statement_timeout = 0";

export const resetTablesSql = "TRUNCATE orders, customers RESTART IDENTITY";

export const advanceSequencesSql = `SELECT
  setval(pg_get_serial_sequence('customers', 'customerid'), (SELECT coalesce(max(customerid), 0) + 1 FROM customers), false),
  setval(pg_get_serial_sequence('orders', 'orderid'), (SELECT coalesce(max(orderid), 0) + 1 FROM orders), false)`;

// Bulk loads run several times faster without per-row foreign-key checks and
// index updates (PostgreSQL's "Populating a Database"): drop orders' foreign
// keys and plain indexes inside the load's transaction, remembering their exact
// definitions from the catalog, and recreate them (indexes first) afterwards,
// which also validates every row at once.
export const deferOrdersConstraintsSql = [
  `CREATE TEMP TABLE deferred_ddl ON COMMIT DROP AS
    SELECT format('ALTER TABLE orders DROP CONSTRAINT %I', conname) AS undo,
        format('ALTER TABLE orders ADD CONSTRAINT %I %s', conname, pg_get_constraintdef(oid)) AS redo, 2 AS step
      FROM pg_constraint WHERE conrelid = 'orders'::regclass AND contype = 'f'
    UNION ALL
    SELECT format('DROP INDEX %s', indexrelid::regclass), pg_get_indexdef(indexrelid), 1
      FROM pg_index WHERE indrelid = 'orders'::regclass
        AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = indexrelid)`,
  "DO $$ DECLARE d record; BEGIN FOR d IN SELECT undo FROM deferred_ddl LOOP EXECUTE d.undo; END LOOP; END $$",
];

export const restoreOrdersConstraintsSql =
  "DO $$ DECLARE d record; BEGIN FOR d IN SELECT redo FROM deferred_ddl ORDER BY step LOOP EXECUTE d.redo; END LOOP; END $$";

export class TablesNotEmptyError extends Error {
  override name = "TablesNotEmptyError";
  constructor(counts: Record<LoadedTable, number>) {
    super(
      `refusing to load: customers holds ${counts.customers} rows and orders ${counts.orders}; ` +
        "run `npm run db:seed -- --reset` to empty both tables first, or `npm run db:seed -- --if-empty` to keep them",
    );
  }
}

/** Throws unless both tables are empty. */
export function assertEmpty(counts: Record<LoadedTable, number>): void {
  if (counts.customers > 0 || counts.orders > 0) throw new TablesNotEmptyError(counts);
}
