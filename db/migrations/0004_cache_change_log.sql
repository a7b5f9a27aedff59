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
CREATE OR REPLACE FUNCTION orders_notify_cache() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  customer_ids integer[];
  years integer[];
  tags text[];
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM cache.changed(ARRAY['*']);
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
  PERFORM cache.changed(tags);
  RETURN NULL;
END;
$$;
