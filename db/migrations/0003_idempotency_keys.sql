CREATE TABLE "idempotency_keys" (
	"key" varchar(128) PRIMARY KEY NOT NULL,
	"fingerprint" text NOT NULL,
	"order_id" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "ix_idempotency_created" ON "idempotency_keys" USING btree ("created_at");--> statement-breakpoint
-- A write made through the app carries an absolute deadline (the app's clock
-- at the request's start, plus its budget, minus a margin for clock skew), and
-- the app answers 503 only once that deadline has passed. This check runs at
-- COMMIT (a deferred constraint trigger on the write's idempotency key), so a
-- write whose commit arrives late, because PostgreSQL was hung, stopped, or
-- the request waited for a connection, aborts itself instead of committing
-- after its caller heard "unavailable". Writes made outside the app set no
-- deadline and are not checked.
CREATE FUNCTION check_write_deadline() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  deadline text := current_setting('dellstore.write_deadline', true);
BEGIN
  IF deadline IS NOT NULL AND deadline <> '' AND clock_timestamp() > deadline::timestamptz THEN
    RAISE EXCEPTION 'the write''s deadline (%) passed before it could commit', deadline
      USING ERRCODE = 'query_canceled';
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER idempotency_keys_write_deadline AFTER INSERT ON idempotency_keys
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_write_deadline();
--> statement-breakpoint
-- orders.add in one round trip and one transaction: the key and the order are
-- stored together or not at all. A key already stored answers with its order
-- ("replayed") when the request is the same, "conflict" when it isn't; a
-- same-key write still in flight is waited for (the primary key decides who
-- wins). Lock waits end at the deadline. Each call also sweeps a few keys
-- older than the 24 hours they are kept.
CREATE FUNCTION add_order(
  p_key text, p_fingerprint text, p_deadline timestamptz,
  p_customer integer, p_date date, p_net numeric, p_tax numeric, p_total numeric
) RETURNS TABLE (
  outcome text, orderid integer, orderdate text, customerid integer, netamount text, tax text, totalamount text
) LANGUAGE plpgsql AS $$
DECLARE
  remaining interval := p_deadline - clock_timestamp();
  stored idempotency_keys;
  new_id integer;
BEGIN
  IF remaining <= interval '0' THEN
    RAISE EXCEPTION 'the write''s deadline passed before it began' USING ERRCODE = 'query_canceled';
  END IF;
  PERFORM set_config('dellstore.write_deadline', p_deadline::text, true);
  PERFORM set_config('lock_timeout', greatest(1, ceil(extract(epoch FROM remaining) * 1000))::bigint::text, true);

  DELETE FROM idempotency_keys AS k WHERE k.key IN (
    SELECT old.key FROM idempotency_keys AS old WHERE old.created_at < now() - interval '24 hours'
      ORDER BY old.created_at LIMIT 16 FOR UPDATE SKIP LOCKED);

  new_id := nextval(pg_get_serial_sequence('orders', 'orderid'));
  INSERT INTO idempotency_keys AS k (key, fingerprint, order_id) VALUES (p_key, p_fingerprint, new_id)
    ON CONFLICT (key) DO NOTHING;
  IF FOUND THEN
    RETURN QUERY INSERT INTO orders AS o (orderid, customerid, orderdate, netamount, tax, totalamount)
      VALUES (new_id, p_customer, p_date, p_net, p_tax, p_total)
      RETURNING 'created', o.orderid, o.orderdate::text, o.customerid, o.netamount::text, o.tax::text, o.totalamount::text;
    RETURN;
  END IF;

  SELECT * INTO stored FROM idempotency_keys AS k WHERE k.key = p_key;
  IF stored.fingerprint <> p_fingerprint THEN
    RETURN QUERY SELECT 'conflict', NULL::integer, NULL::text, NULL::integer, NULL::text, NULL::text, NULL::text;
    RETURN;
  END IF;
  RETURN QUERY SELECT 'replayed', o.orderid, o.orderdate::text, o.customerid, o.netamount::text, o.tax::text, o.totalamount::text
    FROM orders AS o WHERE o.orderid = stored.order_id;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'gone', stored.order_id, NULL::text, NULL::integer, NULL::text, NULL::text, NULL::text;
  END IF;
END $$;
