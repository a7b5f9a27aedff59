CREATE TABLE "customer_order_stats" (
	"customerid" integer PRIMARY KEY NOT NULL,
	"orders" bigint NOT NULL,
	"total_spent" numeric(20, 2) NOT NULL,
	"last_order_date" date
);
--> statement-breakpoint
CREATE TABLE "order_monthly_stats" (
	"month" date NOT NULL,
	"slot" smallint NOT NULL,
	"orders" bigint NOT NULL,
	"revenue" numeric(20, 2) NOT NULL,
	CONSTRAINT "order_monthly_stats_pkey" PRIMARY KEY("month","slot")
);
--> statement-breakpoint
-- Keeps order_monthly_stats and customer_order_stats exact inside every
-- transaction that writes orders, whoever writes (the app, psql, COPY, another
-- service): statement-level triggers see a statement's rows at once through a
-- transition table and add their aggregated deltas. Each trigger names its
-- transition table changed_rows: the NEW rows of an INSERT or UPDATE are
-- added, the OLD rows of an UPDATE or DELETE removed (an UPDATE runs both).
--
-- No hot row: a month's delta goes to this backend's slot (pid % 64), so
-- concurrent writers don't queue on one row until commit. Rows are upserted in
-- key order, so two statements never lock the same rows in opposite orders.
-- A customer's last order date can only grow by adding; a removal that may
-- lower it recomputes it from orders (ix_order_custid) in a later statement,
-- whose snapshot is taken after this transaction holds the customer's row.
CREATE FUNCTION order_aggregates_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  direction integer := CASE TG_ARGV[0] WHEN 'add' THEN 1 WHEN 'remove' THEN -1 END;
  customer_ids integer[];
  latest_removed date[];
BEGIN
  INSERT INTO order_monthly_stats AS s (month, slot, orders, revenue)
    SELECT orderdate - (extract(day FROM orderdate)::integer - 1), pg_backend_pid() % 64,
        direction * count(*), direction * sum(totalamount)
      FROM changed_rows GROUP BY 1 ORDER BY 1
    ON CONFLICT (month, slot) DO UPDATE
      SET orders = s.orders + excluded.orders, revenue = s.revenue + excluded.revenue;
  INSERT INTO customer_order_stats AS s (customerid, orders, total_spent, last_order_date)
    SELECT customerid, direction * count(*), direction * sum(totalamount),
        CASE WHEN direction > 0 THEN max(orderdate) END
      FROM changed_rows WHERE customerid IS NOT NULL GROUP BY 1 ORDER BY 1
    ON CONFLICT (customerid) DO UPDATE
      SET orders = s.orders + excluded.orders, total_spent = s.total_spent + excluded.total_spent,
        last_order_date = greatest(s.last_order_date, excluded.last_order_date);
  IF direction < 0 THEN
    -- Through arrays and the primary key: a plan cached for a one-row statement
    -- stays right for a 100,000-row one and the other way round.
    SELECT array_agg(customerid), array_agg(latest) INTO customer_ids, latest_removed
      FROM (SELECT customerid, max(orderdate) AS latest FROM changed_rows
            WHERE customerid IS NOT NULL GROUP BY 1) AS removed;
    UPDATE customer_order_stats AS s
      SET last_order_date = (SELECT max(o.orderdate) FROM orders AS o WHERE o.customerid = s.customerid)
      FROM unnest(customer_ids, latest_removed) AS removed (customerid, latest)
      WHERE s.customerid = removed.customerid AND removed.latest >= s.last_order_date;
    DELETE FROM customer_order_stats
      WHERE customerid = ANY (customer_ids) AND orders = 0 AND total_spent = 0;
  END IF;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE FUNCTION order_aggregates_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE order_monthly_stats, customer_order_stats;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER order_aggregates_insert AFTER INSERT ON orders
  REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION order_aggregates_apply('add');
--> statement-breakpoint
CREATE TRIGGER order_aggregates_update_add AFTER UPDATE ON orders
  REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION order_aggregates_apply('add');
--> statement-breakpoint
CREATE TRIGGER order_aggregates_update_remove AFTER UPDATE ON orders
  REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION order_aggregates_apply('remove');
--> statement-breakpoint
CREATE TRIGGER order_aggregates_delete AFTER DELETE ON orders
  REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION order_aggregates_apply('remove');
--> statement-breakpoint
CREATE TRIGGER order_aggregates_truncate AFTER TRUNCATE ON orders
  FOR EACH STATEMENT EXECUTE FUNCTION order_aggregates_clear();
--> statement-breakpoint
-- Recomputes both tables from orders (one row per month and per customer) and
-- says how many months and customers had drifted: the repair after restoring
-- a backup taken without the triggers, and the bulk loaders' last step. Holds
-- off writers to orders meanwhile, so no delta slips between count and swap.
CREATE FUNCTION order_aggregates_rebuild(OUT months_fixed integer, OUT customers_fixed integer)
LANGUAGE plpgsql AS $$
BEGIN
  LOCK TABLE orders IN SHARE MODE;
  SELECT count(*) INTO months_fixed
    FROM (SELECT orderdate - (extract(day FROM orderdate)::integer - 1) AS month, count(*) AS orders,
            sum(totalamount) AS revenue
          FROM orders GROUP BY 1) AS fresh
    FULL JOIN (SELECT month, sum(orders) AS orders, sum(revenue) AS revenue FROM order_monthly_stats
          GROUP BY 1 HAVING sum(orders) <> 0 OR sum(revenue) <> 0) AS kept USING (month)
    WHERE fresh.orders IS DISTINCT FROM kept.orders OR fresh.revenue IS DISTINCT FROM kept.revenue;
  SELECT count(*) INTO customers_fixed
    FROM (SELECT customerid, count(*) AS orders, sum(totalamount) AS total_spent, max(orderdate) AS last_order_date
          FROM orders WHERE customerid IS NOT NULL GROUP BY 1) AS fresh
    FULL JOIN customer_order_stats AS kept USING (customerid)
    WHERE fresh.orders IS DISTINCT FROM kept.orders OR fresh.total_spent IS DISTINCT FROM kept.total_spent
      OR fresh.last_order_date IS DISTINCT FROM kept.last_order_date;
  IF months_fixed > 0 THEN
    DELETE FROM order_monthly_stats;
    INSERT INTO order_monthly_stats (month, slot, orders, revenue)
      SELECT orderdate - (extract(day FROM orderdate)::integer - 1), 0, count(*), sum(totalamount)
        FROM orders GROUP BY 1;
  END IF;
  IF customers_fixed > 0 THEN
    DELETE FROM customer_order_stats;
    INSERT INTO customer_order_stats (customerid, orders, total_spent, last_order_date)
      SELECT customerid, count(*), sum(totalamount), max(orderdate) FROM orders WHERE customerid IS NOT NULL GROUP BY 1;
  END IF;
END;
$$;
--> statement-breakpoint
-- Orders already in the table when this migration runs: millions take longer
-- than the app's statement timeout, which this transaction lifts.
SET LOCAL statement_timeout = 0;
--> statement-breakpoint
SELECT order_aggregates_rebuild();
