-- Tells every server instance which cache tags a change to orders affects,
-- whoever made it (the app, psql, a loader), when it commits: NOTIFY is
-- transactional. Statement-level triggers see all of a statement's rows at
-- once, so a bulk write sends one notification; past 64 customers or years it
-- names the epoch tag "*" (retire everything) instead of a long list.
CREATE FUNCTION orders_notify_cache() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  customer_ids integer[];
  years integer[];
  tags text[];
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('orders_changed', '["*"]');
    RETURN NULL;
  ELSIF TG_OP = 'INSERT' THEN
    SELECT array_agg(DISTINCT customerid) FILTER (WHERE customerid IS NOT NULL),
        array_agg(DISTINCT extract(year FROM orderdate)::integer)
      INTO customer_ids, years FROM new_rows;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT array_agg(DISTINCT customerid) FILTER (WHERE customerid IS NOT NULL),
        array_agg(DISTINCT extract(year FROM orderdate)::integer)
      INTO customer_ids, years FROM old_rows;
  ELSE -- UPDATE: the rows before and after, so a change of customer names both customers
    SELECT array_agg(DISTINCT customerid) FILTER (WHERE customerid IS NOT NULL),
        array_agg(DISTINCT extract(year FROM orderdate)::integer)
      INTO customer_ids, years
      FROM (SELECT customerid, orderdate FROM new_rows UNION ALL SELECT customerid, orderdate FROM old_rows) AS changed;
  END IF;
  IF years IS NULL THEN
    RETURN NULL; -- the statement changed no rows
  END IF;
  IF coalesce(cardinality(customer_ids), 0) > 64 OR cardinality(years) > 64 THEN
    tags := ARRAY['*'];
  ELSE
    tags := ARRAY['orders:all']
      || ARRAY(SELECT 'orders:year:' || y FROM unnest(years) AS y ORDER BY y)
      || ARRAY(SELECT 'orders:customer:' || c FROM unnest(coalesce(customer_ids, '{}')) AS c ORDER BY c);
  END IF;
  PERFORM pg_notify('orders_changed', array_to_json(tags)::text);
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER orders_notify_insert AFTER INSERT ON orders
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orders_notify_cache();
--> statement-breakpoint
CREATE TRIGGER orders_notify_update AFTER UPDATE ON orders
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orders_notify_cache();
--> statement-breakpoint
CREATE TRIGGER orders_notify_delete AFTER DELETE ON orders
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION orders_notify_cache();
--> statement-breakpoint
CREATE TRIGGER orders_notify_truncate AFTER TRUNCATE ON orders
  FOR EACH STATEMENT EXECUTE FUNCTION orders_notify_cache();
