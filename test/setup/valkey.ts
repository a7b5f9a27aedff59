// Finds the Valkey-protocol server the tests use: TEST_VALKEY_URL; else a
// throwaway valkey/valkey:8 container when a Docker engine answers; else the
// local server at 127.0.0.1:6379 (Redis 7 speaks the same protocol).
import { Valkey } from "iovalkey";
import { dockerAvailable } from "./docker.ts";
import type { ProvidedService } from "./postgres.ts";

const localUrl = "redis://127.0.0.1:6379";

export async function provideValkey(): Promise<ProvidedService> {
  const explicit = process.env.TEST_VALKEY_URL;
  if (explicit) return checked({ url: explicit, source: "TEST_VALKEY_URL", stop: async () => {} });
  if (await dockerAvailable()) {
    const { GenericContainer, Wait } = await import("testcontainers");
    const container = await new GenericContainer("valkey/valkey:8")
      .withExposedPorts(6379)
      .withWaitStrategy(Wait.forLogMessage("Ready to accept connections"))
      .start();
    return checked({
      url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
      source: "testcontainers valkey/valkey:8",
      stop: async () => void (await container.stop()),
    });
  }
  return checked({ url: localUrl, source: "local server at 127.0.0.1:6379", stop: async () => {} });
}

async function checked(service: ProvidedService): Promise<ProvidedService> {
  const client = new Valkey(service.url, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.ping();
    return service;
  } catch (error) {
    throw new Error(
      `The tests need a Valkey-protocol server and found none (${service.source}: ${(error as Error).message}). ` +
        "Set TEST_VALKEY_URL=redis://host:6379, run a Docker engine (testcontainers starts valkey/valkey:8), " +
        'or start a local server: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no',
    );
  } finally {
    client.disconnect();
  }
}

/** Deletes every key under `prefix`. */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const client = new Valkey(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = "0";
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      if (keys.length > 0) await client.unlink(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    client.disconnect();
  }
}
