// Live counts: one topic per watched count (its cache tag), recomputed once
// per change of that tag on this instance and fanned out to every subscriber.
// Changed topics are recomputed in waves, one database round trip each (the
// topics that changed while a wave ran make the next).
//
// Changes come from the cache's tag feed (tag-tracking.ts on Valkey: any
// instance's bump and the applier's; memory-feed.ts without Valkey). A topic
// is never in two waves at once, and a wave reads a fresh database snapshot
// that starts after the previous wave ended, so a topic's
// published counts follow the database's order: never an older count after a
// newer one. Publications carry a process-wide sequence number, the event id.
//
// Nothing is queued per subscriber: a subscriber holds the version it was
// last sent, and whenever it can take an event it is sent the topic's latest
// value. A slow or stalled subscriber costs its socket buffers, never a
// backlog; a burst of writes ends with the final count.
//
// A new subscriber's first event is a read: it waits for the next wave that
// reads its topic and starts after it arrived (never one already running, whose
// snapshot may predate a write acknowledged before the subscriber came), so it
// holds every such write. That wave runs at once, throttle or not, and is shared
// by every subscriber that arrived meanwhile: one round trip for thousands. The
// throttle bounds what is fanned out to the topic's other subscribers: a count
// read before their interval is up is held (`pending`) and given to the new
// subscribers only, and to everyone when the interval ends. The topic's later
// waves read later snapshots, so no stream goes back.
import { randomBytes } from "node:crypto";
import type { TagFeed } from "../cache/tag-tracking.ts";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";

/** What a subscriber is sent: a count and the id of the publication that carried it. */
export interface CountEvent {
  readonly id: string;
  readonly count: number;
}

export interface CountInput {
  customerId?: number | undefined;
}

export interface CountHubOptions {
  /** The count's tag (from its cache policy): one topic per tag. */
  tagOf(input: CountInput): string;
  /** Reads these counts from the database in one round trip, never from the cache (see above). */
  load(inputs: readonly CountInput[]): Promise<number[]>;
  /** Tag-version changes; undefined (a Valkey Cluster): topics are polled. */
  feed: TagFeed | undefined;
  /** MAX_SUBSCRIPTIONS: open streams per instance. */
  maxSubscriptions: number;
  log: Logger;
  metrics: Metrics;
  /** At most one publication per topic per this long (a burst is coalesced to its latest count). */
  minIntervalMs?: number;
  /**
   * At most this many events per second for one topic, over all its
   * subscribers: a topic watched by many publishes less often than
   * minIntervalMs (1,000 subscribers: every 100 ms at 10,000), so what one
   * count's fan-out costs is bounded, not the whole event loop.
   */
  maxTopicEventsPerSecond?: number;
  /** Most topics read in one wave (after "all", every topic is changed). */
  maxWave?: number;
  /** While the feed is down (changes may be missed), every topic is recomputed this often. */
  pollMs?: number;
}

/** A subscription's end by shutdown: tRPC ends its stream without a "return", so clients reconnect. */
export class StreamClosed extends Error {
  override name = "AbortError";
}

/** No more subscriptions on this instance (MAX_SUBSCRIPTIONS) or it is stopping. */
export class NoCapacity extends Error {
  override name = "NoCapacity";
}

interface Published extends CountEvent {
  /** Process-wide sequence number: later publications have larger ones. */
  readonly seq: number;
  /** When the change it answers arrived (performance.now()), for the push latency. */
  readonly changedAt: number;
}

/** A wave's read of a topic, awaited by the subscribers that arrived before it started. */
class Read {
  readonly promise: Promise<void>;
  /** Set once the read has succeeded: its subscribers may take the topic's latest count. */
  done = false;
  /** The subscribers waiting for it, told when it is done (push streams flush then). */
  readonly waiting: Subscription[] = [];
  private settle: { resolve: () => void; reject: (error: unknown) => void } = { resolve: () => {}, reject: () => {} };

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.promise.catch(() => {}); // awaited by the subscribers waiting for it, if any are still there
  }

  resolve(): void {
    this.done = true;
    this.settle.resolve();
    for (const subscription of this.waiting) subscription.notify();
    this.waiting.length = 0; // each holds it as its firstRead: it mustn't keep those that closed
  }

  reject(error: unknown): void {
    this.settle.reject(error);
    this.waiting.length = 0;
  }
}

class Topic {
  readonly subscribers = new Set<Subscription>();
  /** The latest count sent to every subscriber. */
  value: Published | undefined;
  /**
   * A newer count than `value`, read before the throttle let it be sent to
   * every subscriber: only the new subscribers (whose first event it is) get it
   * before it becomes `value`.
   */
  pending: Published | undefined;
  /** When the oldest change not yet recomputed arrived; undefined: none pending. */
  changedAt: number | undefined;
  running = false;
  /** The throttle's: fires when the topic may publish again (its pending count, or a read of its changes). */
  timer: NodeJS.Timeout | undefined;
  lastPublishAt = Number.NEGATIVE_INFINITY;
  /** The read that subscribers arriving now wait for: the next wave's, not a running one's. */
  nextRead: Read | undefined;
  /** The running wave's read of this topic. */
  reading: Read | undefined;
  constructor(
    readonly tag: string,
    readonly input: CountInput,
  ) {}
}

/** One open stream's slot (taken before it starts, so the limit is exact) and its view of a topic. */
export class Subscription {
  /** The seq of the last publication sent; -1: none yet. */
  private sent = -1;
  private wake: (() => void) | undefined;
  private ended = false;

  constructor(
    private readonly hub: CountHub,
    private readonly topic: Topic,
    /** The read this subscription's first event waits for (one that started after it arrived). */
    private readonly firstRead: Read,
    /** Called when a newer value is there (push streams); pull streams wait in next(). */
    private readonly onChange?: () => void,
  ) {}

  /** The latest value if it is newer than the last one taken (and marks it taken); undefined otherwise. */
  take(): CountEvent | undefined {
    // Before its read, the topic's count may be older than a write acknowledged before this
    // subscriber arrived; after it, the first event is the newest count read (even one the
    // throttle still holds back from the others), later ones what is published to all.
    if (this.sent < 0 && !this.firstRead.done) return undefined;
    const value = this.sent < 0 ? (this.topic.pending ?? this.topic.value) : this.topic.value;
    if (!value || value.seq <= this.sent) return undefined;
    // The first event is the count as it is, not a change pushed: no push latency for it.
    this.hub.sent(value, this.sent >= 0);
    this.sent = value.seq;
    return value;
  }

  /** Marks `id` as already held by the client (Last-Event-ID): it isn't sent again unless it changes. Call after ready(). */
  resumeFrom(id: string | null | undefined): void {
    if (!this.firstRead.done || this.sent >= 0) return;
    const value = this.topic.pending ?? this.topic.value;
    if (id && value?.id === id) this.sent = value.seq;
  }

  /** Waits for the count as read after this subscription began (see above); throws if it can't be read. */
  async ready(): Promise<void> {
    await this.firstRead.promise;
  }

  /** Waits for a value newer than the last one taken; rejects with StreamClosed when the hub closes or `signal` aborts. */
  async next(signal?: AbortSignal): Promise<CountEvent> {
    for (;;) {
      if (this.ended) throw new StreamClosed("the server is shutting down");
      if (signal?.aborted) throw new StreamClosed("the subscriber went away");
      const event = this.take();
      if (event) return event;
      await new Promise<void>((resolve) => {
        const done = () => {
          signal?.removeEventListener("abort", done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        signal?.addEventListener("abort", done, { once: true });
      });
    }
  }

  /** Called by the hub on publication and on close. */
  notify(ended = false): void {
    if (ended) this.ended = true;
    this.wake?.();
    this.onChange?.();
  }

  get closedByServer(): boolean {
    return this.ended;
  }

  /** Frees the slot; safe to call more than once. */
  close(): void {
    this.hub.release(this, this.topic);
  }
}

export class CountHub {
  private readonly topics = new Map<string, Topic>();
  private readonly dirty = new Set<Topic>();
  private waveRunning = false;
  private retry: NodeJS.Timeout | undefined;
  private open = 0;
  private closed = false;
  private poller: NodeJS.Timeout | undefined;
  private seq = 0;
  /** Ids from another process (or an earlier run of this one) never match ours. */
  private readonly boot = randomBytes(4).toString("base64url");
  private readonly unsubscribe: (() => void) | undefined;
  private readonly minIntervalMs: number;
  private readonly maxTopicEventsPerSecond: number;
  private readonly maxWave: number;
  private readonly pollMs: number;

  constructor(private readonly options: CountHubOptions) {
    this.minIntervalMs = options.minIntervalMs ?? 50;
    this.maxTopicEventsPerSecond = options.maxTopicEventsPerSecond ?? 5_000;
    this.maxWave = options.maxWave ?? 1000;
    this.pollMs = options.pollMs ?? 1000;
    this.unsubscribe = options.feed?.onTagsChanged((change) => {
      if (change === "all") {
        // The feed was lost or is back: poll while it is down.
        this.updatePolling();
        for (const topic of this.topics.values()) this.changed(topic);
      } else
        for (const tag of change) {
          const topic = this.topics.get(tag);
          if (topic) this.changed(topic);
        }
    });
  }

  get subscriptions(): number {
    return this.open;
  }

  /** Whether a subscribe() now would be refused (MAX_SUBSCRIPTIONS reached, or stopping). */
  get full(): boolean {
    return this.closed || this.open >= this.options.maxSubscriptions;
  }

  /**
   * A slot for a stream of `input`'s count, or NoCapacity (MAX_SUBSCRIPTIONS
   * reached, or stopping). `onChange` makes it a push stream (plain SSE).
   */
  subscribe(input: CountInput, onChange?: () => void): Subscription {
    if (this.closed) throw new NoCapacity("the server is shutting down");
    if (this.open >= this.options.maxSubscriptions) {
      throw new NoCapacity(`this instance serves ${this.options.maxSubscriptions} streams at most (MAX_SUBSCRIPTIONS)`);
    }
    const tag = this.options.tagOf(input);
    let topic = this.topics.get(tag);
    if (!topic) {
      topic = new Topic(tag, input);
      this.topics.set(tag, topic);
    }
    // Joins the topic's next read, made by a wave that starts after now.
    topic.nextRead ??= new Read();
    const read = topic.nextRead;
    const subscription = new Subscription(this, topic, read, onChange);
    read.waiting.push(subscription);
    topic.subscribers.add(subscription);
    this.open++;
    this.options.metrics.liveSubscriptions.set(this.open);
    this.updatePolling();
    this.advance(topic);
    return subscription;
  }

  /** Ends every stream (they are told, and reconnect elsewhere) and refuses new ones. */
  close(): void {
    this.closed = true;
    this.unsubscribe?.();
    clearInterval(this.poller);
    clearTimeout(this.retry);
    for (const topic of this.topics.values()) {
      clearTimeout(topic.timer);
      for (const subscription of topic.subscribers) subscription.notify(true);
      // No wave starts any more: streams still waiting for their first count are refused.
      const closed = new StreamClosed("the server is shutting down");
      topic.reading?.reject(closed);
      topic.nextRead?.reject(closed);
    }
  }

  /** @internal counts an event sent and its push latency */
  sent(value: Published, pushed: boolean): void {
    const { metrics } = this.options;
    metrics.liveEvents.inc();
    if (pushed) metrics.livePushLatency.observe((performance.now() - value.changedAt) / 1000);
  }

  /** @internal */
  release(subscription: Subscription, topic: Topic): void {
    if (!topic.subscribers.delete(subscription)) return;
    this.open--;
    this.options.metrics.liveSubscriptions.set(this.open);
    if (topic.subscribers.size === 0) {
      // Nobody watches it: forget it (a later subscriber loads it afresh).
      this.topics.delete(topic.tag);
      this.dirty.delete(topic);
      clearTimeout(topic.timer);
    }
    this.updatePolling();
  }

  private changed(topic: Topic): void {
    if (this.topics.get(topic.tag) !== topic) return; // nobody watches it any more
    topic.changedAt ??= performance.now();
    this.advance(topic);
  }

  /**
   * What a topic that isn't being read does next: publishes its pending count
   * once its interval is up; is read in the next wave at once if subscribers
   * wait for their first count, or once its interval is up if it changed;
   * otherwise waits for its timer. `justRead`: its wave has just ended.
   */
  private advance(topic: Topic, justRead = false): void {
    if (topic.running || this.closed || this.topics.get(topic.tag) !== topic) return; // its wave's end comes back here
    const now = performance.now();
    // A pending count read by an earlier wave, with changes since, is read again first (that
    // wave's end publishes): the others get the newest count when their interval is up, not
    // an older one and the newest an interval later. Just read, it is published whatever came
    // since, or a steady stream of changes would hold every publication back.
    const due = topic.lastPublishAt + this.intervalOf(topic) <= now;
    if (topic.pending && due && (justRead || topic.changedAt === undefined)) this.publish(topic, topic.pending, now);
    if (topic.nextRead) {
      this.dirty.add(topic);
      this.pump();
      return;
    }
    if (topic.changedAt === undefined && !topic.pending) return;
    const wait = topic.lastPublishAt + this.intervalOf(topic) - now;
    if (wait <= 0) {
      this.dirty.add(topic);
      this.pump();
    } else if (!topic.timer) {
      topic.timer = setTimeout(() => {
        topic.timer = undefined;
        this.advance(topic);
      }, wait);
    }
  }

  /** Starts the next wave unless one runs: the topics advance() put in `dirty`, read in one round trip. */
  private pump(): void {
    if (this.waveRunning || this.closed) return;
    const wave: Topic[] = [];
    for (const topic of this.dirty) {
      if (wave.length >= this.maxWave) break;
      this.dirty.delete(topic);
      wave.push(topic);
    }
    if (wave.length === 0) return;
    this.waveRunning = true;
    void this.recompute(wave).finally(() => {
      this.waveRunning = false;
      this.pump();
    });
  }

  /** How long `topic` waits between publications: minIntervalMs, longer if its subscribers are many. */
  private intervalOf(topic: Topic): number {
    return Math.max(this.minIntervalMs, (topic.subscribers.size * 1000) / this.maxTopicEventsPerSecond);
  }

  private async recompute(wave: Topic[]): Promise<void> {
    const changedAt = wave.map((topic) => {
      topic.running = true;
      const at = topic.changedAt ?? performance.now();
      topic.changedAt = undefined; // changes from now on need another wave
      // Subscribers arriving from now on wait for the next wave: this one's read may be older than them.
      topic.reading = topic.nextRead;
      topic.nextRead = undefined;
      return at;
    });
    let counts: number[];
    try {
      counts = await this.options.load(wave.map((topic) => topic.input));
    } catch (error) {
      this.options.log.warn(
        { topics: wave.length, reason: error instanceof Error ? error.message : String(error) },
        "live counts could not be recomputed; retrying",
      );
      wave.forEach((topic, i) => {
        topic.running = false;
        // Keep the pending change for the retry; subscribers keep the last count meanwhile.
        topic.changedAt ??= changedAt[i];
        // Those waiting for a first count are told (no count at all beats an older one);
        // subscribers that arrived during the wave wait for the retry.
        topic.reading?.reject(error);
        topic.reading = undefined;
      });
      this.retryLater();
      return;
    }
    wave.forEach((topic, i) => {
      topic.running = false;
      if (this.closed) return;
      const count = counts[i] as number;
      // Compared with the newest count read, held back or not: subscribers may already hold a pending one.
      if ((topic.pending ?? topic.value)?.count !== count) {
        const seq = ++this.seq;
        topic.pending = { id: `${this.boot}.${seq.toString(36)}`, count, seq, changedAt: changedAt[i] as number };
      }
      // Published now if the interval is up (advance), else held for the new subscribers only.
      this.advance(topic, true);
      topic.reading?.resolve();
      topic.reading = undefined;
    });
  }

  /** After a failed wave: its topics (still marked changed) go again in pollMs. */
  private retryLater(): void {
    if (this.retry || this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      for (const topic of this.topics.values()) {
        if (topic.changedAt !== undefined) this.changed(topic);
        else if (topic.nextRead) this.advance(topic);
      }
    }, this.pollMs);
    this.retry.unref();
  }

  /** Sends the topic's pending count to every subscriber. */
  private publish(topic: Topic, value: Published, now: number): void {
    topic.value = value;
    topic.pending = undefined;
    topic.lastPublishAt = now;
    clearTimeout(topic.timer);
    topic.timer = undefined;
    for (const subscription of topic.subscribers) subscription.notify();
  }

  /** While the feed can't be trusted (down, or absent), every topic is recomputed every pollMs. */
  private updatePolling(): void {
    const poll = this.topics.size > 0 && !this.closed && !this.options.feed?.live;
    if (poll && !this.poller) {
      this.poller = setInterval(() => {
        if (this.options.feed?.live) return this.updatePolling();
        for (const topic of this.topics.values()) this.changed(topic);
      }, this.pollMs);
      this.poller.unref();
    } else if (!poll && this.poller) {
      clearInterval(this.poller);
      this.poller = undefined;
    }
  }
}
