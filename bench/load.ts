// One load scenario: autocannon against a server process, after a warm-up,
// sampling the server's resident memory while it runs.
import { readFile } from "node:fs/promises";
import autocannon from "autocannon";

export interface LoadOptions {
  url: string;
  /** Returns the next request's path, method and body. */
  next: () => { path: string; method?: "GET" | "POST"; body?: string; headers?: Record<string, string> };
  pid: number;
  connections?: number;
  seconds?: number;
  warmupSeconds?: number;
}

export interface LoadResult {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  peakRssMb: number;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const run = (duration: number) =>
    autocannon({
      url: options.url,
      connections: options.connections ?? 32,
      duration,
      requests: [
        {
          setupRequest: (request) => {
            const next = options.next();
            return {
              ...request,
              path: next.path,
              method: next.method ?? "GET",
              body: next.body,
              headers: { ...(next.body ? { "content-type": "application/json" } : {}), ...next.headers },
            };
          },
        },
      ],
    });
  await run(options.warmupSeconds ?? 2);
  let peak = 0;
  const sampler = setInterval(async () => {
    peak = Math.max(peak, await rssMb(options.pid));
  }, 100);
  const result = await run(options.seconds ?? 8);
  clearInterval(sampler);
  peak = Math.max(peak, await rssMb(options.pid));
  return {
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    peakRssMb: peak,
  };
}

/** Resident memory of a process, from /proc (Linux). */
export async function rssMb(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}
