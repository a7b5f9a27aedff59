// The tutorial's cache-aside, kept here only to show that the race test has
// teeth: no versions, the key is simply deleted on write, and a read that
// raced the write stores what it read whenever it finishes.
import type { Valkey } from "iovalkey";
import superjson from "superjson";
import { entryKey } from "../../server/cache/keys.ts";
import type { Cache, Lookup, ReadRequest } from "../../server/cache/query-cache.ts";

export class NaiveCache implements Cache {
  readonly status = "up";
  private readonly keysByTag = new Map<string, Set<string>>();

  constructor(
    private readonly client: Valkey,
    private readonly prefix: string,
    private readonly beforeStore: (key: string) => Promise<void>,
  ) {}

  async read<T>(request: ReadRequest, load: () => Promise<T>): Promise<T> {
    const key = entryKey(this.prefix, request.procedure, request.input);
    const hit = await this.client.get(key);
    if (hit !== null) return superjson.parse<T>(hit);
    const value = await load();
    for (const tag of request.tags) this.keysByTag.set(tag, (this.keysByTag.get(tag) ?? new Set()).add(key));
    await this.beforeStore(key);
    await this.client.set(key, superjson.stringify(value), "EX", request.ttlSeconds ?? 120);
    return value;
  }

  async lookup(request: ReadRequest): Promise<Lookup> {
    const key = entryKey(this.prefix, request.procedure, request.input);
    return { key, payload: (await this.client.get(key)) ?? undefined };
  }

  async invalidate(tags: readonly string[]): Promise<boolean> {
    const keys = tags.flatMap((tag) => [...(this.keysByTag.get(tag) ?? [])]);
    if (keys.length > 0) await this.client.del(...keys);
    return true;
  }

  async ready(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}
