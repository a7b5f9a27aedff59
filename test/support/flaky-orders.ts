// A trigger that fails orders the way a concurrent transaction would, for the
// tests of the server's retries: an order of 777.77 fails its first two
// attempts with serialization_failure (the sequence flaky_attempts counts
// them), one of 666.66 always with deadlock_detected.
import type postgres from "postgres";

export async function installFlakyOrders(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(`
    CREATE SEQUENCE flaky_attempts;
    CREATE FUNCTION flaky_orders() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.netamount = 777.77 AND nextval('flaky_attempts') <= 2 THEN
        RAISE EXCEPTION 'simulated serialization failure' USING ERRCODE = 'serialization_failure';
      ELSIF NEW.netamount = 666.66 THEN
        RAISE EXCEPTION 'simulated deadlock' USING ERRCODE = 'deadlock_detected';
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER flaky_orders BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION flaky_orders();`);
}

export async function removeFlakyOrders(sql: postgres.Sql): Promise<void> {
  await sql.unsafe("DROP TRIGGER flaky_orders ON orders; DROP FUNCTION flaky_orders(); DROP SEQUENCE flaky_attempts;");
}
