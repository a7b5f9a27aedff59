ALTER TABLE "idempotency_keys" ALTER COLUMN "order_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "idempotency_keys" ADD COLUMN "abandoned_attempts" uuid[];--> statement-breakpoint
-- Writes that scale and answers that are true (server/cache/applier.ts,
-- db/add-order.ts):
--
-- * No NOTIFY inside the app's writes. A transaction that notifies takes a
--   cluster-wide lock at commit and holds it through its WAL flush, so every
--   notifying write committed one after another. The triggers still log every
--   change in the writing transaction; one elected applier per cache store
--   reads the log. Only writes made outside the app (psql, other services,
--   loaders) notify, with no payload, to wake the applier at once; they are
--   rare, so their commit lock costs nothing. The app marks its own
--   transactions with the setting dellstore.app_write.
-- * The log's position is a snapshot; an applier reads the rows committed
--   since its last one through the xid index: new xids (>= its xmax) and the
--   few that were running then (its xip), never everything since its xmin, so
--   a session left idle in transaction does not grow the scan.
-- * No deadline trigger at commit: an outcome the app can't learn in time is
--   settled by a tombstone (settle_write below), not by clocks.
-- * Sweeping expired idempotency keys moves off the write path, to the applier.
DROP TRIGGER idempotency_keys_write_deadline ON idempotency_keys;
--> statement-breakpoint
DROP FUNCTION check_write_deadline();
--> statement-breakpoint
DROP FUNCTION add_order(text, text, timestamptz, integer, date, numeric, numeric, numeric);
--> statement-breakpoint
DROP TRIGGER orders_notify_insert ON orders;
--> statement-breakpoint
DROP TRIGGER orders_notify_update ON orders;
--> statement-breakpoint
DROP TRIGGER orders_notify_delete ON orders;
--> statement-breakpoint
DROP TRIGGER orders_notify_truncate ON orders;
--> statement-breakpoint
DROP FUNCTION orders_notify_cache();
--> statement-breakpoint
DROP INDEX cache.change_log_at;
--> statement-breakpoint
ALTER TABLE cache.change_log DROP COLUMN writer, DROP COLUMN at;
--> statement-breakpoint
-- Logs a change in the writing transaction. Writes made outside the app also
-- wake the appliers (payload-less: equal notifications of one transaction
-- are sent once).
CREATE OR REPLACE FUNCTION cache.changed(tags text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cache.change_log (tags) VALUES (tags);
  IF current_setting('dellstore.app_write', true) IS DISTINCT FROM 'on' THEN
    PERFORM pg_notify('cache_wake', '');
  END IF;
END;
$$;
--> statement-breakpoint
-- The cache tags a set of changed orders affects: past 64 customers or years,
-- the epoch tag "*" (retire everything) instead of a long list.
CREATE FUNCTION cache.order_tags(customer_ids integer[], years integer[]) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN coalesce(cardinality(customer_ids), 0) > 64 OR cardinality(years) > 64 THEN ARRAY['*']
    ELSE ARRAY['orders:all']
      || ARRAY(SELECT 'orders:year:' || y FROM unnest(years) AS y ORDER BY y)
      || ARRAY(SELECT 'orders:customer:' || c FROM unnest(coalesce(customer_ids, '{}')) AS c ORDER BY c)
  END
$$;
--> statement-breakpoint
-- One static function for the four orders triggers: each branch reads only
-- the transition tables its operation has, and its plan is cached per trigger
-- (no EXECUTE re-planned on every write).
CREATE FUNCTION orders_log_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  customer_ids integer[];
  years integer[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT array_agg(DISTINCT customerid) FILTER (WHERE customerid IS NOT NULL),
        array_agg(DISTINCT extract(year FROM orderdate)::integer)
      INTO customer_ids, years FROM new_rows;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT array_agg(DISTINCT customerid) FILTER (WHERE customerid IS NOT NULL),
        array_agg(DISTINCT extract(year FROM orderdate)::integer)
      INTO customer_ids, years FROM old_rows;
  ELSIF TG_OP = 'UPDATE' THEN -- the rows before and after: a change of customer names both
    SELECT array_agg(DISTINCT customerid) FILTER (WHERE customerid IS NOT NULL),
        array_agg(DISTINCT extract(year FROM orderdate)::integer)
      INTO customer_ids, years
      FROM (SELECT customerid, orderdate FROM new_rows UNION ALL SELECT customerid, orderdate FROM old_rows) AS changed;
  ELSE -- TRUNCATE
    PERFORM cache.changed(ARRAY['*']);
    RETURN NULL;
  END IF;
  IF years IS NOT NULL THEN -- else the statement changed no rows
    PERFORM cache.changed(cache.order_tags(customer_ids, years));
  END IF;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER orders_log_insert AFTER INSERT ON orders
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orders_log_changes();
--> statement-breakpoint
CREATE TRIGGER orders_log_update AFTER UPDATE ON orders
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orders_log_changes();
--> statement-breakpoint
CREATE TRIGGER orders_log_delete AFTER DELETE ON orders
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION orders_log_changes();
--> statement-breakpoint
CREATE TRIGGER orders_log_truncate AFTER TRUNCATE ON orders
  FOR EACH STATEMENT EXECUTE FUNCTION orders_log_changes();
--> statement-breakpoint
-- Where each cache store's applier has got to: the snapshot whose changes it
-- has applied, registered after its store records the same snapshot. A log
-- row is pruned once every registered applier has applied it; a registration
-- not renewed within the retention is dropped, and that store retires
-- everything when it comes back.
CREATE TABLE cache.appliers (
  store text PRIMARY KEY,
  covered pg_snapshot NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
--> statement-breakpoint
-- The distinct tags of the changes committed since the snapshot `since`, and
-- the snapshot they are read in (one statement: the rows are exactly those
-- visible in it). A row not visible in `since` has a newer xid than its xmax,
-- or one of its running xids: two index ranges, however old its xmin is.
-- `fresh`: whether `store` is registered within the retention, i.e. no row
-- it has not applied can have been pruned.
CREATE FUNCTION cache.changes_since(since pg_snapshot, store text, retention interval,
  OUT snapshot text, OUT tags text[], OUT fresh boolean)
LANGUAGE sql STABLE AS $$
  SELECT pg_current_snapshot()::text,
    coalesce((
      SELECT array_agg(DISTINCT tag) FROM (
        SELECT l.xid, l.tags FROM cache.change_log AS l WHERE l.xid >= pg_snapshot_xmax(since)
        UNION ALL
        SELECT l.xid, l.tags FROM cache.change_log AS l
          WHERE l.xid IN (SELECT pg_snapshot_xip(since)) AND l.xid < pg_snapshot_xmax(since)
      ) AS c, unnest(c.tags) AS tag
      WHERE NOT pg_visible_in_snapshot(c.xid, since)), '{}'),
    EXISTS (SELECT 1 FROM cache.appliers AS a WHERE a.store = changes_since.store AND a.at > now() - retention)
$$;
--> statement-breakpoint
-- An applier's bookkeeping after a pass it has recorded in its store:
-- registers its snapshot, drops registrations older than the retention,
-- prunes the rows every registered applier has applied, and sweeps expired
-- idempotency keys, each bounded per call.
CREATE FUNCTION cache.after_pass(p_store text, p_covered pg_snapshot, retention interval,
  OUT pruned bigint, OUT swept bigint)
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cache.appliers AS a (store, covered, at) VALUES (p_store, p_covered, now())
    ON CONFLICT (store) DO UPDATE SET covered = excluded.covered, at = excluded.at;
  DELETE FROM cache.appliers AS a WHERE a.at < now() - retention;
  DELETE FROM cache.change_log AS l
    WHERE l.xid < (SELECT min(pg_snapshot_xmax(a.covered)) FROM cache.appliers AS a)
      AND NOT EXISTS (SELECT 1 FROM cache.appliers AS a WHERE NOT pg_visible_in_snapshot(l.xid, a.covered));
  GET DIAGNOSTICS pruned = ROW_COUNT;
  DELETE FROM idempotency_keys AS k WHERE k.key IN (
    SELECT old.key FROM idempotency_keys AS old WHERE old.created_at < now() - interval '24 hours'
      ORDER BY old.created_at LIMIT 1000 FOR UPDATE SKIP LOCKED);
  GET DIAGNOSTICS swept = ROW_COUNT;
END;
$$;
--> statement-breakpoint
-- What a key already holds, for a request with `p_fingerprint`: "conflict"
-- (another request's key), "abandoned" (a tombstone, naming the caller's
-- attempt), "replayed" with its order, or "gone" (its order was deleted).
CREATE FUNCTION idempotency_outcome(p_key text, p_fingerprint text)
RETURNS TABLE (
  outcome text, orderid integer, orderdate text, customerid integer, netamount text, tax text, totalamount text
) LANGUAGE plpgsql AS $$
DECLARE
  stored idempotency_keys;
BEGIN
  SELECT * INTO stored FROM idempotency_keys AS k WHERE k.key = p_key;
  IF stored.fingerprint <> p_fingerprint THEN
    RETURN QUERY SELECT 'conflict', NULL::integer, NULL::text, NULL::integer, NULL::text, NULL::text, NULL::text;
  ELSIF stored.order_id IS NULL THEN
    RETURN QUERY SELECT 'abandoned', NULL::integer, NULL::text, NULL::integer, NULL::text, NULL::text, NULL::text;
  ELSE
    RETURN QUERY SELECT 'replayed', o.orderid, o.orderdate::text, o.customerid, o.netamount::text, o.tax::text,
        o.totalamount::text
      FROM orders AS o WHERE o.orderid = stored.order_id;
    IF NOT FOUND THEN
      RETURN QUERY SELECT 'gone', stored.order_id, NULL::text, NULL::integer, NULL::text, NULL::text, NULL::text;
    END IF;
  END IF;
END $$;
--> statement-breakpoint
-- orders.add in one round trip and one transaction: the key and the order are
-- stored together or not at all. A key already stored answers with its order
-- ("replayed") when the request is the same, "conflict" when it isn't; a
-- same-key write still in flight is waited for (the primary key decides who
-- wins). A tombstone (a key without an order, see settle_write) is claimed by
-- any attempt with the same request except those it names, which answer
-- "abandoned" and store nothing. Lock waits end at the deadline.
CREATE FUNCTION add_order(
  p_key text, p_fingerprint text, p_attempt uuid, p_deadline timestamptz,
  p_customer integer, p_date date, p_net numeric, p_tax numeric, p_total numeric
) RETURNS TABLE (
  outcome text, orderid integer, orderdate text, customerid integer, netamount text, tax text, totalamount text
) LANGUAGE plpgsql AS $$
DECLARE
  remaining interval := p_deadline - clock_timestamp();
  new_id integer;
BEGIN
  IF remaining <= interval '0' THEN
    RAISE EXCEPTION 'the write''s deadline passed before it began' USING ERRCODE = 'query_canceled';
  END IF;
  PERFORM set_config('dellstore.app_write', 'on', true);
  PERFORM set_config('lock_timeout', greatest(1, ceil(extract(epoch FROM remaining) * 1000))::bigint::text, true);

  new_id := nextval(pg_get_serial_sequence('orders', 'orderid'));
  INSERT INTO idempotency_keys AS k (key, fingerprint, order_id) VALUES (p_key, p_fingerprint, new_id)
    ON CONFLICT (key) DO UPDATE SET order_id = excluded.order_id, abandoned_attempts = NULL, created_at = now()
      WHERE k.order_id IS NULL AND k.fingerprint = excluded.fingerprint
        AND NOT (p_attempt = ANY (coalesce(k.abandoned_attempts, '{}')));
  IF FOUND THEN
    RETURN QUERY INSERT INTO orders AS o (orderid, customerid, orderdate, netamount, tax, totalamount)
      VALUES (new_id, p_customer, p_date, p_net, p_tax, p_total)
      RETURNING 'created', o.orderid, o.orderdate::text, o.customerid, o.netamount::text, o.tax::text, o.totalamount::text;
    RETURN;
  END IF;

  RETURN QUERY SELECT * FROM idempotency_outcome(p_key, p_fingerprint);
END $$;
--> statement-breakpoint
-- What became of an attempt whose answer the app could not get in time (a
-- timeout, a lost connection), learned on another connection within
-- `p_wait_ms`. If the key holds no order yet, a tombstone naming the attempt
-- is committed: the attempt can then never store its order ("abandoned":
-- proven not stored). If the key holds an order, that is the answer
-- ("stored", or "conflict" for another request's). If the attempt's
-- transaction still holds the key (e.g. its commit waits for a synchronous
-- standby), the wait ends with lock_not_available: the outcome is unknown.
CREATE FUNCTION settle_write(p_key text, p_fingerprint text, p_attempt uuid, p_wait_ms integer)
RETURNS TABLE (
  outcome text, orderid integer, orderdate text, customerid integer, netamount text, tax text, totalamount text
) LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('lock_timeout', greatest(1, p_wait_ms)::text, true);
  INSERT INTO idempotency_keys AS k (key, fingerprint, order_id, abandoned_attempts)
    VALUES (p_key, p_fingerprint, NULL, ARRAY[p_attempt])
    ON CONFLICT (key) DO UPDATE SET abandoned_attempts = coalesce(k.abandoned_attempts, '{}') || p_attempt
      WHERE k.order_id IS NULL;
  IF FOUND THEN -- a tombstone stands for this attempt now
    RETURN QUERY SELECT 'abandoned', NULL::integer, NULL::text, NULL::integer, NULL::text, NULL::text, NULL::text;
    RETURN;
  END IF;
  RETURN QUERY SELECT * FROM idempotency_outcome(p_key, p_fingerprint);
END $$;
