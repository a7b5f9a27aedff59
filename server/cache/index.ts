import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import type { Tracing } from "../telemetry/index.ts";
import { MemoryStore } from "./memory-store.ts";
import { QueryCache } from "./query-cache.ts";
import { ValkeyStore } from "./valkey-store.ts";

export type { Cache } from "./query-cache.ts";

export interface CacheConfig {
  valkeyUrl: string | undefined;
  valkeyClusterNodes: string[] | undefined;
  cachePrefix: string;
  cacheTtlSeconds: number;
}

/** Valkey Cluster or Valkey when configured, else the in-process store (which other instances don't share). */
export function createCache(config: CacheConfig, log: Logger, metrics: Metrics, tracing?: Tracing): QueryCache {
  const { valkeyUrl, valkeyClusterNodes } = config;
  if (!valkeyUrl && !valkeyClusterNodes) {
    log.warn(
      "no VALKEY_URL: caching in this process's memory, which other instances don't share; set VALKEY_URL=redis://host:6379 to share it",
    );
  }
  const valkeyOrMemory = valkeyClusterNodes
    ? new ValkeyStore({ clusterNodes: valkeyClusterNodes })
    : valkeyUrl
      ? new ValkeyStore({ url: valkeyUrl })
      : new MemoryStore();
  const store = tracing ? tracing.store(valkeyOrMemory) : valkeyOrMemory;
  return new QueryCache({
    store,
    prefix: config.cachePrefix,
    ttlSeconds: config.cacheTtlSeconds,
    log,
    metrics,
  });
}
