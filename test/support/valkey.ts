import { randomBytes } from "node:crypto";
import { Valkey } from "iovalkey";
import { inject } from "vitest";

/** A key prefix of the test's own, under the run's prefix that the global teardown deletes. */
export function cachePrefix(): string {
  return `${inject("runPrefix")}:${randomBytes(4).toString("hex")}`;
}

/** A direct connection to the test Valkey, for looking behind the service's back. */
export function valkeyClient(): Valkey {
  return new Valkey(inject("valkeyUrl"), { maxRetriesPerRequest: 1 });
}
