-- add_order() is given how long it may wait (p_wait_ms, as settle_write is),
-- not a deadline on the app server's clock. PostgreSQL compared that deadline
-- with its own clock: an app server whose clock ran a few seconds behind the
-- database's had every write refused as "past its deadline", and one ahead let
-- lock waits run past the time the app must answer by. The time starts when
-- the call does, on the database's clock alone.
CREATE FUNCTION add_order(
  p_key text, p_fingerprint text, p_attempt uuid, p_wait_ms integer,
  p_customer integer, p_date date, p_net numeric, p_tax numeric, p_total numeric
) RETURNS TABLE (
  outcome text, orderid integer, orderdate text, customerid integer, netamount text, tax text, totalamount text
) LANGUAGE plpgsql AS $$
DECLARE
  new_id integer;
BEGIN
  IF p_wait_ms <= 0 THEN
    RAISE EXCEPTION 'the write''s deadline passed before it began' USING ERRCODE = 'query_canceled';
  END IF;
  PERFORM set_config('dellstore.app_write', 'on', true);
  PERFORM set_config('lock_timeout', p_wait_ms::text, true);

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
-- The previous release's call, kept for instances still running it during a
-- rolling upgrade: its deadline read as the time left, then the call above.
CREATE OR REPLACE FUNCTION add_order(
  p_key text, p_fingerprint text, p_attempt uuid, p_deadline timestamptz,
  p_customer integer, p_date date, p_net numeric, p_tax numeric, p_total numeric
) RETURNS TABLE (
  outcome text, orderid integer, orderdate text, customerid integer, netamount text, tax text, totalamount text
) LANGUAGE sql AS $$
  SELECT * FROM add_order(
    p_key, p_fingerprint, p_attempt,
    least(ceil(extract(epoch FROM p_deadline - clock_timestamp()) * 1000), 2147483647)::integer,
    p_customer, p_date, p_net, p_tax, p_total)
$$;
