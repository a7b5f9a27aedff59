import { afterAll, beforeAll } from "vitest";

/**
 * A resource for a whole test file: created before its tests, disposed after
 * them. The returned object stands for it, and may only be used in tests and hooks.
 */
export function useFixture<T extends object>(create: () => Promise<T>, dispose: (value: T) => Promise<void>): T {
  let value: T | undefined;
  beforeAll(async () => {
    value = await create();
  });
  afterAll(async () => {
    if (value) await dispose(value);
  });
  return new Proxy({} as T, {
    get(_, key) {
      if (!value) throw new Error("a fixture is only ready inside tests and hooks");
      const member = Reflect.get(value, key, value);
      // Class methods need their instance as `this`; own properties (a tRPC client proxy, say) are left as they are.
      return typeof member === "function" && !Object.hasOwn(value, key) ? member.bind(value) : member;
    },
  });
}
