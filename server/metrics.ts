// Prometheus metrics, one registry per app instance (GET /metrics).
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export function createMetrics() {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    cacheRequests: new Counter({
      name: "cache_requests_total",
      help: "Cached procedure calls, by whether the cache answered (hit) or the database did (miss)",
      labelNames: ["procedure", "result"] as const,
      registers,
    }),
    cacheLoads: new Counter({
      name: "cache_loads_total",
      help: "Database reads made on behalf of cache misses (concurrent identical misses share one)",
      labelNames: ["procedure"] as const,
      registers,
    }),
    cacheInvalidations: new Counter({
      name: "cache_invalidations_total",
      help: "Cache tags invalidated",
      registers,
    }),
    cacheRetirements: new Counter({
      name: "cache_retire_all_total",
      help: "Times this instance retired every cache entry at once (bumped the epoch)",
      registers,
    }),
    cacheErrors: new Counter({
      name: "cache_errors_total",
      help: "Failed cache store operations (the request was then served from the database)",
      labelNames: ["operation"] as const,
      registers,
    }),
    cacheUp: new Gauge({
      name: "cache_up",
      help: "1 while the cache store is in use, 0 while requests bypass it",
      registers,
    }),
    l1Requests: new Counter({
      name: "cache_l1_requests_total",
      help: "Lookups in the in-process tier: hit (answered from process memory), miss (asked Valkey), off (its tag tracking was down)",
      labelNames: ["result"] as const,
      registers,
    }),
    l1Bytes: new Gauge({
      name: "cache_l1_bytes",
      help: "Estimated size of the in-process tier (entries and tag mirror), bounded by L1_MAX_BYTES",
      registers,
    }),
    l1Entries: new Gauge({
      name: "cache_l1_entries",
      help: "Entries held by the in-process tier",
      registers,
    }),
    tagTrackingUp: new Gauge({
      name: "cache_tag_tracking_up",
      help: "1 while Valkey's invalidations of tag versions reach this instance (the in-process tier is usable), else 0",
      registers,
    }),
    tagTrackingLosses: new Counter({
      name: "cache_tag_tracking_losses_total",
      help: "Times the tag tracking connection was lost (the in-process tier's mirror is then rebuilt)",
      registers,
    }),
    changesUp: new Gauge({
      name: "cache_changes_up",
      help: "1 while the change applier's passes are seen (changes made outside the app reach the cache); 0 while not (reads bypass the cache)",
      registers,
    }),
    changesOutages: new Counter({
      name: "cache_changes_outages_total",
      help: "Times no applier pass was seen for too long (reads bypassed the cache until one was)",
      registers,
    }),
    applier: new Gauge({
      name: "cache_applier",
      help: "1 while this instance is its cache store's change applier",
      registers,
    }),
    applierPasses: new Counter({
      name: "cache_applier_passes_total",
      help: "Passes this instance made over the change log as the applier",
      registers,
    }),
    applierPassDuration: new Histogram({
      name: "cache_applier_pass_duration_seconds",
      help: "Time of one applier pass: read the changes, bump their tags, record the snapshot, prune",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    wakes: new Counter({
      name: "cache_wakes_total",
      help: "Wake-ups received: writes made outside the app committed",
      registers,
    }),
    handOffs: new Counter({
      name: "cache_hand_offs_total",
      help: "Writes whose own invalidation could not reach Valkey, by what their wait for an applier's pass found: applied, late (answered after 1 s anyway), no applier (no pass announced: no instance reaches Valkey)",
      labelNames: ["outcome"] as const,
      registers,
    }),
    writeOutcomes: new Counter({
      name: "write_outcomes_total",
      help: "Writes by how their outcome was learned: committed, refused (PostgreSQL said so), settled (absent, proven by a tombstone; or found stored), unknown (504)",
      labelNames: ["outcome"] as const,
      registers,
    }),
    liveSubscriptions: new Gauge({
      name: "live_subscriptions",
      help: "Open live count streams (orders.watchCount and GET /count/stream), bounded by MAX_SUBSCRIPTIONS",
      registers,
    }),
    liveEvents: new Counter({
      name: "live_events_total",
      help: "Count events sent to live subscribers (a subscriber that can't keep up is sent the latest count, not every one)",
      registers,
    }),
    livePushLatency: new Histogram({
      name: "live_push_latency_seconds",
      help: "From a tag change reaching this instance to the new count being sent to a subscriber",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    procedureDuration: new Histogram({
      name: "trpc_procedure_duration_seconds",
      help: "tRPC procedure latency, REST routes included",
      labelNames: ["procedure", "type", "outcome"] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
