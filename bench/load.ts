// One load scenario against a server process, after a warm-up, sampling the
// server's resident memory while it runs. The generator is wrk when installed
// (a Lua script picks each request), else autocannon; either way the result
// says which ran and how much CPU it used itself, so a generator that is the
// bottleneck shows.
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { run } from "../test/support/run.ts";

/**
 * One kind of request in a scenario, drawn with probability weight / total.
 * `{hot}` in the path or body becomes one of the hot customers, `{random}` any customer;
 * `{key}` in a header, a key no other request of the run has (an Idempotency-Key, as the client sends).
 */
export interface RequestSpec {
  weight?: number;
  method?: "GET" | "POST";
  path: string;
  body?: string;
  headers?: Record<string, string>;
}

export interface Workload {
  requests: RequestSpec[];
  hot: readonly number[];
  customers: number;
}

export interface LoadOptions extends Workload {
  url: string;
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
  generator: "wrk" | "autocannon";
  /** CPU seconds (user + system) the load generator itself used during the measured run. */
  generatorCpuSeconds: number;
  /** The server's own CPU time (user + system) per request answered: comparable even on a busy machine. */
  serverCpuMicrosPerRequest: number;
}

type Measured = Omit<LoadResult, "peakRssMb" | "serverCpuMicrosPerRequest">;

export const wrkInstalled = spawnSync("wrk", ["--version"]).error === undefined;

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const generate = wrkInstalled ? runWrk : runAutocannon;
  await generate(options, options.warmupSeconds ?? 2);
  let peak = 0;
  const sampler = setInterval(async () => {
    peak = Math.max(peak, await rssMb(options.pid));
  }, 100);
  try {
    const cpuBefore = await cpuSeconds(options.pid);
    const seconds = options.seconds ?? 8;
    const result = await generate(options, seconds);
    const answered = result.requestsPerSecond * seconds;
    return {
      ...result,
      peakRssMb: Math.max(peak, await rssMb(options.pid)),
      serverCpuMicrosPerRequest: answered > 0 ? (((await cpuSeconds(options.pid)) - cpuBefore) * 1e6) / answered : 0,
    };
  } finally {
    clearInterval(sampler);
  }
}

const withJson = (spec: RequestSpec) => ({
  ...(spec.body ? { "content-type": "application/json" } : {}),
  ...spec.headers,
});

function pick(workload: Workload): () => RequestSpec {
  const total = workload.requests.reduce((sum, r) => sum + (r.weight ?? 1), 0);
  return () => {
    let r = Math.random() * total;
    for (const spec of workload.requests) {
      r -= spec.weight ?? 1;
      if (r < 0) return spec;
    }
    return workload.requests.at(-1) as RequestSpec;
  };
}

let keys = 0;
const keyPrefix = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;

function fill(text: string, workload: Workload): string {
  return text
    .replaceAll("{hot}", () => String(workload.hot[Math.floor(Math.random() * workload.hot.length)]))
    .replaceAll("{random}", () => String(1 + Math.floor(Math.random() * workload.customers)))
    .replaceAll("{key}", () => `${keyPrefix}-${++keys}`);
}

async function runAutocannon(options: LoadOptions, duration: number): Promise<Measured> {
  const next = pick(options);
  const cpu = process.cpuUsage();
  const result = await autocannon({
    url: options.url,
    connections: options.connections ?? 32,
    duration,
    requests: [
      {
        setupRequest: (request) => {
          const spec = next();
          return {
            ...request,
            path: fill(spec.path, options),
            method: spec.method ?? "GET",
            body: spec.body === undefined ? undefined : fill(spec.body, options),
            headers: Object.fromEntries(Object.entries(withJson(spec)).map(([k, v]) => [k, fill(v, options)])),
          };
        },
      },
    ],
  });
  const used = process.cpuUsage(cpu);
  return {
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    generator: "autocannon",
    generatorCpuSeconds: (used.user + used.system) / 1e6,
  };
}

const lua = (value: string) => JSON.stringify(value); // a JSON string is a valid Lua string literal here

/** A wrk script drawing each request as the workload says. */
export function wrkScript(workload: Workload): string {
  const total = workload.requests.reduce((sum, r) => sum + (r.weight ?? 1), 0);
  let cumulative = 0;
  const entries = workload.requests.map((spec) => {
    cumulative += (spec.weight ?? 1) / total;
    const headers = Object.entries(withJson(spec)).map(([k, v]) => `[${lua(k)}] = ${lua(v)}`);
    return `  { upto = ${cumulative}, method = ${lua(spec.method ?? "GET")}, path = ${lua(spec.path)}, body = ${
      spec.body === undefined ? "nil" : lua(spec.body)
    }, headers = { ${headers.join(", ")} } },`;
  });
  return `-- generated by bench/load.ts
math.randomseed(os.time())
local hot = { ${workload.hot.join(", ")} }
local customers = ${workload.customers}
local entries = {
${entries.join("\n")}
}
local keyPrefix = string.format("%x-%x-", os.time(), math.random(0, 2147483647))
local keys = 0
local function fill(s)
  if s == nil then return nil end
  s = s:gsub("{hot}", function() return tostring(hot[math.random(#hot)]) end)
  s = s:gsub("{key}", function() keys = keys + 1; return keyPrefix .. keys end)
  return (s:gsub("{random}", function() return tostring(math.random(customers)) end))
end
local function format(e)
  local headers = {}
  for k, v in pairs(e.headers) do headers[k] = fill(v) end
  return wrk.format(e.method, fill(e.path), headers, fill(e.body))
end
request = function()
  local r = math.random()
  for _, e in ipairs(entries) do
    if r <= e.upto then return format(e) end
  end
  return format(entries[#entries])
end
`;
}

async function runWrk(options: LoadOptions, duration: number): Promise<Measured> {
  const dir = await mkdtemp(join(tmpdir(), "bench-wrk-"));
  try {
    const script = join(dir, "workload.lua");
    await writeFile(script, wrkScript(options));
    const args = ["-t1", `-c${options.connections ?? 32}`, `-d${duration}s`, "--latency", "-s", script, options.url];
    // bash's `times` prints its children's user and system CPU time once wrk has exited.
    const { code, stdout, stderr } = await run(
      "bash",
      ["-c", 'wrk "$@"; status=$?; times; exit $status', "wrk", ...args],
      {},
      (duration + 30) * 1000,
    );
    if (code !== 0) throw new Error(`wrk failed (${code}): ${stderr || stdout}`);
    return parseWrk(stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const msPerUnit: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
const toMs = (value: string, unit: string) => Number(value) * (msPerUnit[unit] ?? Number.NaN);

export function parseWrk(output: string): Measured {
  const latency = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m").exec(output);
    return m ? Math.round(toMs(m[1] as string, m[2] as string) * 100) / 100 : Number.NaN;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  // The second line of `times`: the children's user and system time, as 0m1.234s.
  const times = [...output.matchAll(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/g)].at(-1);
  const cpu = times ? Number(times[1]) * 60 + Number(times[2]) + Number(times[3]) * 60 + Number(times[4]) : Number.NaN;
  return {
    requestsPerSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1] ?? Number.NaN),
    p50: latency("50"),
    p99: latency("99"),
    errors: socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0),
    generator: "wrk",
    generatorCpuSeconds: cpu,
  };
}

/** CPU time (user + system) a process has used, from /proc (Linux; clock ticks of 1/100 s). */
async function cpuSeconds(pid: number): Promise<number> {
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
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
