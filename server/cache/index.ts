import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import type { Tracing } from "../telemetry/index.ts";
import { LocalTier } from "./local-tier.ts";
import { MemoryTagFeed } from "./memory-feed.ts";
import { MemoryStore } from "./memory-store.ts";
import { QueryCache } from "./query-cache.ts";
import { TagTracking } from "./tag-tracking.ts";
import { ValkeyStore } from "./valkey-store.ts";

// The module's API for a tRPC app: cached queries and invalidating mutations on its own base
// procedure (middleware.ts), their policies (policy.ts), and the cache they reach (createCache).
export {
  type BaseProcedure,
  type CacheAccess,
  type CachedQueryProcedure,
  type CachedResolver,
  type Caching,
  createCaching,
  type InvalidatesOptions,
  provesNothingCommitted,
  type ResolverContext,
} from "./middleware.ts";
export { type CachePolicy, type DeclaredPolicy, declarePolicy } from "./policy.ts";
export type { Cache, CacheMode } from "./query-cache.ts";

export interface CacheConfig {
  valkeyUrl: string | undefined;
  valkeyClusterNodes: string[] | undefined;
  cachePrefix: string;
  cacheTtlSeconds: number;
  /** L1_MAX_BYTES: the in-process tier's budget; 0 turns it off. */
  l1MaxBytes: number;
}

/** Test seams of the in-process tier. */
export interface CacheOptions {
  /** Where the invalidation connection goes, if not where the store does (a test's proxy). */
  trackingUrl?: string;
  barrierTimeoutMs?: number;
  hungAfterMs?: number;
  skipBarrier?: boolean;
}

/** Valkey Cluster or Valkey when configured, else the in-process store (which other instances don't share). */
export function createCache(
  config: CacheConfig,
  log: Logger,
  metrics: Metrics,
  options: CacheOptions = {},
  tracing?: Tracing,
): QueryCache {
  const { valkeyUrl, valkeyClusterNodes } = config;
  if (!valkeyUrl && !valkeyClusterNodes) {
    log.warn(
      "no VALKEY_URL: caching in this process's memory, which other instances don't share; set VALKEY_URL=redis://host:6379 to share it",
    );
  }
  // Without Valkey, the store itself says which tags it bumped (one process: nothing else can).
  const memoryFeed = !valkeyUrl && !valkeyClusterNodes ? new MemoryTagFeed(config.cachePrefix) : undefined;
  const valkeyOrMemory = valkeyClusterNodes
    ? new ValkeyStore({ clusterNodes: valkeyClusterNodes })
    : valkeyUrl
      ? new ValkeyStore({ url: valkeyUrl })
      : new MemoryStore({ onWrite: (keys) => memoryFeed?.written(keys) });
  const store = tracing ? tracing.store(valkeyOrMemory) : valkeyOrMemory;
  if (valkeyClusterNodes && config.l1MaxBytes > 0) {
    log.info(
      "the in-process tier (L1_MAX_BYTES) is off on a Valkey Cluster: its tag tracking and read barrier work on one server",
    );
  }
  // The feed is made whenever Valkey is a single server: live subscriptions use it with or without the tier.
  const tracking =
    valkeyUrl && !valkeyClusterNodes && valkeyOrMemory instanceof ValkeyStore
      ? new TagTracking({
          url: options.trackingUrl ?? valkeyUrl,
          prefix: config.cachePrefix,
          log,
          barrierTimeoutMs: options.barrierTimeoutMs,
          hungAfterMs: options.hungAfterMs,
          storeRunId: () => valkeyOrMemory.runId(),
          onStateChange: (live, reason) => {
            metrics.tagTrackingUp.set(live ? 1 : 0);
            if (!live) metrics.tagTrackingLosses.inc();
            log.info(
              { reason },
              live ? "tag tracking live" : "tag tracking lost: the in-process tier is off until it is back",
            );
          },
        })
      : undefined;
  tracking?.start();
  const local =
    tracking && config.l1MaxBytes > 0
      ? new LocalTier({ maxBytes: config.l1MaxBytes, feed: tracking, metrics, skipBarrier: options.skipBarrier })
      : undefined;
  return new QueryCache({
    store,
    prefix: config.cachePrefix,
    ttlSeconds: config.cacheTtlSeconds,
    log,
    metrics,
    tracking: tracking ?? memoryFeed,
    local,
  });
}
