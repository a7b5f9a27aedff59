-- The cache store's own record of what it has applied is the truth about what
-- it reflects (server/cache/applier.ts). Whatever a store holds (entries, tag
-- tokens, its covered record) can go back in time together: a restore from a
-- backup, the last second lost with appendfsync everysec, a failover to a
-- lagging replica. So:
--
-- * A store's registration in cache.appliers is what the log may be pruned
--   behind for it. It is set from the covered record read back from the store
--   (never from what an applier meant to write), and it only ever advances:
--   rows once pruned behind a registration are gone for good.
-- * A store whose record covers its registration can be replayed from that
--   record: every row not visible in it is still in the log. One whose record
--   is older, absent, or whose registration expired is retired whole (the
--   epoch), and starts again at a snapshot registered in the same statement,
--   so no row it will need can be pruned in between.
--
-- cache.changes_since() stays for instances of the previous release during a
-- rolling upgrade.

-- Whether every transaction visible in `b` is visible in `a`: `a` is at least
-- as new as `b`. (One visible in `b` is below b's xmax, so below a's; it can
-- then only be invisible in `a` as one of a's running xids.)
CREATE FUNCTION cache.snapshot_covers(a pg_snapshot, b pg_snapshot) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT pg_snapshot_xmax(a) >= pg_snapshot_xmax(b)
    AND NOT EXISTS (
      SELECT 1 FROM pg_snapshot_xip(a) AS x WHERE x < pg_snapshot_xmax(b) AND pg_visible_in_snapshot(x, b))
$$;
--> statement-breakpoint
-- The distinct tags of the changes committed since the store's record
-- `since`, and a snapshot that covers them (tags may include changes
-- committed just after it: bumped twice, never missed). `complete`: the log
-- still holds every change `since` doesn't show. When it is not (or `since`
-- is null), no tags are read: the caller retires everything, and the store
-- is registered at `snapshot` at once.
CREATE FUNCTION cache.store_changes(since pg_snapshot, p_store text, retention interval,
  OUT snapshot text, OUT tags text[], OUT complete boolean)
LANGUAGE plpgsql AS $$
DECLARE
  taken pg_snapshot := pg_current_snapshot();
  registered pg_snapshot;
BEGIN
  SELECT a.covered INTO registered FROM cache.appliers AS a WHERE a.store = p_store AND a.at > now() - retention;
  snapshot := taken::text;
  complete := since IS NOT NULL AND registered IS NOT NULL AND cache.snapshot_covers(since, registered);
  IF NOT complete THEN
    tags := '{}';
    INSERT INTO cache.appliers AS a (store, covered, at) VALUES (p_store, taken, now())
      ON CONFLICT (store) DO UPDATE SET covered = excluded.covered, at = excluded.at;
    RETURN;
  END IF;
  SELECT coalesce(array_agg(DISTINCT tag), '{}') INTO tags FROM (
    SELECT l.xid, l.tags FROM cache.change_log AS l WHERE l.xid >= pg_snapshot_xmax(since)
    UNION ALL
    SELECT l.xid, l.tags FROM cache.change_log AS l
      WHERE l.xid IN (SELECT pg_snapshot_xip(since)) AND l.xid < pg_snapshot_xmax(since)
  ) AS c, unnest(c.tags) AS tag
  WHERE NOT pg_visible_in_snapshot(c.xid, since);
END;
$$;
--> statement-breakpoint
-- An applier's bookkeeping: renews the store's registration, advancing it to
-- `p_covered` (a record read back from the store) only if that is newer, then
-- prunes and sweeps as before.
CREATE OR REPLACE FUNCTION cache.after_pass(p_store text, p_covered pg_snapshot, retention interval,
  OUT pruned bigint, OUT swept bigint)
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cache.appliers AS a (store, covered, at) VALUES (p_store, p_covered, now())
    ON CONFLICT (store) DO UPDATE SET at = excluded.at,
      covered = CASE WHEN cache.snapshot_covers(excluded.covered, a.covered) THEN excluded.covered ELSE a.covered END;
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
-- The applier's session that holds a store's lock (pg_try_advisory_lock on
-- hashtextextended(key, 0)), for a candidate to end when that session's path
-- has gone silent: PostgreSQL keeps a session, and its lock, as long as its
-- socket looks alive, which a partition can make hours.
CREATE FUNCTION cache.applier_lock_holder(lock_key text) RETURNS integer
LANGUAGE sql STABLE AS $$
  SELECT l.pid FROM pg_locks AS l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
      AND l.classid = ((hashtextextended(lock_key, 0) >> 32) & 4294967295)::oid
      AND l.objid = (hashtextextended(lock_key, 0) & 4294967295)::oid
      AND l.pid <> pg_backend_pid()
    LIMIT 1
$$;
