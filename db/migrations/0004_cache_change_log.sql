-- A short log of cache-relevant changes, so an instance that was not
-- listening (starting, restarting, reconnecting, or with Valkey down) can
-- replay exactly the invalidations it may have missed instead of retiring
-- every cached entry (server/cache/change-log.ts).
--
-- Each row is one writing statement's tags and its transaction id; an
-- instance remembers in Valkey the snapshot up to which every row has been
-- applied ("covered"), and replays the rows not visible in it. Rows are pruned
-- by age (the listeners do it); a covered snapshot older than the retention
-- makes an instance retire everything instead. It lives in its own schema:
-- it is the cache's bookkeeping, not dellstore data.
CREATE SCHEMA IF NOT EXISTS cache;
--> statement-breakpoint
CREATE TABLE cache.change_log (
  xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  tags text[] NOT NULL,
  writer text NOT NULL DEFAULT current_setting('application_name'),
  at timestamptz NOT NULL DEFAULT clock_timestamp()
);
--> statement-breakpoint
CREATE INDEX change_log_xid ON cache.change_log (xid);
--> statement-breakpoint
CREATE INDEX change_log_at ON cache.change_log (at);
--> statement-breakpoint
-- Logs a change and tells the listening instances, both at commit (NOTIFY is
-- transactional, and so is the row). The payload names the transaction (so a
-- listener knows which log row it has applied) and the writer's
-- application_name (so the instance that wrote it, and already invalidated its
-- tags itself, doesn't do it again). Other triggers should call this too.
CREATE FUNCTION cache.changed(tags text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cache.change_log (tags) VALUES (tags);
  PERFORM pg_notify('orders_changed', json_build_object(
    'tags', tags, 'xid', pg_current_xact_id()::text, 'writer', current_setting('application_name'))::text);
END;
$$;
--> statement-breakpoint
-- The orders triggers (migration 0001) now go through cache.changed(); the
-- same tags as before, the rows read through whichever transition tables the
-- operation has.
CREATE OR REPLACE FUNCTION orders_notify_cache() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  changed_rows text := CASE TG_OP
    WHEN 'INSERT' THEN 'new_rows'
    WHEN 'DELETE' THEN 'old_rows'
    ELSE '(SELECT customerid, orderdate FROM new_rows UNION ALL SELECT customerid, orderdate FROM old_rows) AS changed'
  END;
  customer_ids integer[];
  years integer[];
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM cache.changed(ARRAY['*']);
    RETURN NULL;
  END IF;
  EXECUTE 'SELECT array_agg(DISTINCT customerid) FILTER (WHERE customerid IS NOT NULL), '
    || 'array_agg(DISTINCT extract(year FROM orderdate)::integer) FROM ' || changed_rows
    INTO customer_ids, years;
  IF years IS NOT NULL THEN -- else the statement changed no rows
    PERFORM cache.changed(CASE
      WHEN coalesce(cardinality(customer_ids), 0) > 64 OR cardinality(years) > 64 THEN ARRAY['*']
      ELSE ARRAY['orders:all']
        || ARRAY(SELECT 'orders:year:' || y FROM unnest(years) AS y ORDER BY y)
        || ARRAY(SELECT 'orders:customer:' || c FROM unnest(coalesce(customer_ids, '{}')) AS c ORDER BY c)
    END);
  END IF;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
-- A customer row's existence is part of what customers.summary answers (its
-- absence is NOT_FOUND), so a statement that removes, renumbers or adds
-- customers logs and names their orders:customer:<id> tags, as the orders
-- triggers do. Changes to other columns answer nothing cached.
CREATE FUNCTION customers_notify_cache() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ids integer[];
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM cache.changed(ARRAY['*']);
    RETURN NULL;
  ELSIF TG_OP = 'INSERT' THEN
    SELECT array_agg(customerid ORDER BY customerid) INTO ids FROM new_rows;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT array_agg(customerid ORDER BY customerid) INTO ids FROM old_rows;
  ELSE -- UPDATE: the ids that disappeared or appeared, if any
    SELECT array_agg(customerid ORDER BY customerid) INTO ids
      FROM ((SELECT customerid FROM old_rows EXCEPT SELECT customerid FROM new_rows)
        UNION ALL (SELECT customerid FROM new_rows EXCEPT SELECT customerid FROM old_rows)) AS moved;
  END IF;
  IF ids IS NOT NULL THEN -- else no customer appeared or disappeared
    PERFORM cache.changed(CASE WHEN cardinality(ids) > 64 THEN ARRAY['*']
      ELSE ARRAY(SELECT 'orders:customer:' || id FROM unnest(ids) AS id) END);
  END IF;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER customers_notify_insert AFTER INSERT ON customers
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION customers_notify_cache();
--> statement-breakpoint
CREATE TRIGGER customers_notify_update AFTER UPDATE ON customers
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION customers_notify_cache();
--> statement-breakpoint
CREATE TRIGGER customers_notify_delete AFTER DELETE ON customers
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION customers_notify_cache();
--> statement-breakpoint
CREATE TRIGGER customers_notify_truncate AFTER TRUNCATE ON customers
  FOR EACH STATEMENT EXECUTE FUNCTION customers_notify_cache();
