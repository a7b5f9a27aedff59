// The service started in-process on a free port, over a real listening socket.
import { Writable } from "node:stream";
import { type Client, createClient } from "../../client/index.ts";
import { type App, type AppOverrides, startApp } from "../../server/app.ts";
import { loadConfig } from "../../server/config.ts";
import { createLogger } from "../../server/logger.ts";
import { useFixture } from "./fixture.ts";

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export interface TestApp {
  readonly url: string;
  readonly app: App;
  readonly client: Client;
  /** Every line the server logged, parsed. */
  readonly logs: LogLine[];
  close(): Promise<void>;
}

export async function startTestApp(
  env: Record<string, string | undefined>,
  overrides?: AppOverrides,
): Promise<TestApp> {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) if (line) logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "debug", ...env });
  const app = await startApp(config, createLogger(config.logLevel, sink), overrides);
  // No retries: tests see each answer as it is (test/idempotency.test.ts tests the retries).
  return { url: app.url, app, client: createClient({ url: app.url, retry: false }), logs, close: () => app.close() };
}

/** A server for the whole file, started before its tests and closed after them. */
export function useApp(env: () => Record<string, string | undefined>): TestApp {
  return useFixture(
    () => startTestApp(env()),
    (app) => app.close(),
  );
}
