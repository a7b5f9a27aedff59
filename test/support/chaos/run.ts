// The fault history test, in the spirit of Jepsen: server processes on a
// PostgreSQL and a Valkey of its own, clients making API writes (REST and
// tRPC, with idempotency keys, retried as the typed client does), writes made
// outside the app (INSERT, UPDATE of customerid and orderdate, DELETE, COPY),
// reads of every cached procedure and live streams, while a nemesis injects
// faults drawn from a seeded schedule. Everything is recorded with its start
// and end; model.ts checks the history. The same seed draws the same schedule.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import postgres from "postgres";
import { connectPostgres } from "../../../db/client.ts";
import { defaultDataset, generateDataset } from "../../../db/load/generate.ts";
import { provesNotCommitted } from "../../../server/database-errors.ts";
import { command } from "../local-cluster.ts";
import { startLocalPostgres } from "../local-postgres.ts";
import { type LocalValkey, startLocalValkey } from "../local-valkey.ts";
import { type ServerProcess, shippedServer, startServerProcess } from "../server-process.ts";
import { openSse, type SseEvent, type SseStream } from "../sse.ts";
import { TcpProxy } from "../tcp-proxy.ts";
import { databaseUrl } from "../urls.ts";
import {
  check,
  explain,
  type Fault,
  type FaultKind,
  type History,
  type Key,
  type Read,
  random,
  type Stream,
  type Write,
  writeOutcomeViolations,
} from "./model.ts";

export interface ChaosOptions {
  seconds: number;
  seed: number;
  instances?: number;
  /** Progress lines (faults as they are injected). */
  log?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  seconds: number;
  writes: Record<Write["via"], number>;
  writeOutcomes: Record<Write["outcome"], number>;
  readsChecked: number;
  readErrors: number;
  streams: number;
  streamEvents: number;
  faults: Partial<Record<FaultKind, number>>;
  /** Each violation, explained with the operations and faults around it. */
  violations: string[];
}

export const faultKinds: readonly FaultKind[] = [
  "valkey-killed-empty",
  "valkey-restored-older",
  "valkey-client-killed",
  "valkey-stopped",
  "postgres-stopped",
  "database-path-silent",
  "valkey-path-cut",
  "instance-killed",
  "orders-locked",
];

/** Customers written all the time: orders inserted (API and psql), moved between them and deleted. */
const hotCustomers = [101, 102, 103, 104];
/**
 * Customers written now and then (one order every second or so, API or psql,
 * inserts only): a stale entry of theirs is not hidden by the next write for
 * long, so reads of them find what a fault left behind.
 */
const coldCustomers = [105, 106, 111, 112];
/** Watched by live streams (a count that never falls). */
const watchedCustomers = [111, 112];
const allCustomers = [...hotCustomers, ...coldCustomers];
const keys: Key[] = [...allCustomers.map((c) => `customer:${c}` as const), "all", "year:2004"];

interface Instance {
  index: number;
  process: ServerProcess | undefined;
  database: TcpProxy;
  valkey: TcpProxy;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { seed, seconds, instances: size = 3 } = options;
  const say = options.log ?? (() => {});
  const rand = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const between = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo));
  // The clients draw from their own generator: their timing is not the schedule's to reproduce.
  const clientRand = random(seed ^ 0x5bd1e995);
  const clientPick = <T>(items: readonly T[]): T => items[Math.floor(clientRand() * items.length)] as T;

  const pg = await startLocalPostgres();
  let valkey: LocalValkey | undefined;
  const instances: Instance[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const url = databaseUrl(pg.url, "chaos");
    const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
    await admin.unsafe("CREATE DATABASE chaos");
    await admin.end();
    const setup = connectPostgres(url, { max: 1 });
    await setup.migrate();
    await generateDataset(setup.db, defaultDataset);
    await setup.close();
    const sql = postgres(url, { max: 4, onnotice: () => {} });
    cleanups.push(() => sql.end({ timeout: 1 }));
    valkey = await startLocalValkey();
    const pgPort = Number(new URL(pg.url).port);
    for (let index = 0; index < size; index++) {
      instances.push({
        index,
        process: undefined,
        database: await TcpProxy.start({ host: "127.0.0.1", port: pgPort }),
        valkey: await TcpProxy.start({ host: "127.0.0.1", port: valkey.port }),
      });
    }
    const startInstance = async (instance: Instance) => {
      instance.process = await startServerProcess(
        {
          DATABASE_URL: instance.database.url(url),
          VALKEY_URL: instance.valkey.url((valkey as LocalValkey).url),
          CACHE_PREFIX: "chaos",
          LOG_LEVEL: "warn",
          DATABASE_TIMEOUT_SECONDS: "3",
        },
        shippedServer,
      );
    };
    await Promise.all(instances.map(startInstance));
    cleanups.push(() => Promise.all(instances.map((i) => i.process?.stop("SIGKILL"))));
    cleanups.push(() => Promise.all(instances.flatMap((i) => [i.database.close(), i.valkey.close()])));
    await waitUntilReady(instances);

    const counts = async (): Promise<Map<Key, number>> => {
      const [row] = await sql<Record<string, number>[]>`
        SELECT count(*)::int AS "all", count(*) FILTER (WHERE extract(year FROM orderdate) = 2004)::int AS "year:2004",
          ${sql.unsafe(
            allCustomers.map((c) => `count(*) FILTER (WHERE customerid = ${c})::int AS "customer:${c}"`).join(", "),
          )}
        FROM orders`;
      return new Map(keys.map((key) => [key, Number(row?.[key] ?? 0)]));
    };
    const base = await counts();
    const origin = performance.now();
    const now = () => performance.now() - origin;
    const writes: Write[] = [];
    const reads: Read[] = [];
    const streams: Stream[] = [];
    const faults: Fault[] = [];
    let readErrors = 0;
    let done = false;
    let nextWrite = 0;

    const live = () => instances.filter((i) => i.process !== undefined);
    const anyInstance = () => clientPick(live());

    // An API write, retried with the same key after a 504 or no answer, as the typed client does.
    const apiWrite = async (customer: number) => {
      const id = nextWrite++;
      const month = String(1 + Math.floor(clientRand() * 12)).padStart(2, "0");
      const net = (100_000 + id) / 100; // a marker: which rows this write left is counted by it
      const via = clientRand() < 0.5 ? "rest" : "trpc";
      const write: Write = {
        id,
        via,
        what: `add customer ${customer} net ${net.toFixed(2)}`,
        start: now(),
        end: 0,
        outcome: "unknown",
        deltas: { [`customer:${customer}`]: 1, all: 1, "year:2004": 1 },
      };
      writes.push(write);
      const key = randomUUID();
      for (let attempt = 0; ; attempt++) {
        const instance = anyInstance();
        const status = await addOrder(instance, via, key, customer, `2004-${month}-14`, net);
        if (status === 200 || status === 503) {
          write.outcome = status === 200 ? "ok" : "failed";
          write.end = now();
          write.instance = instance.index;
          return;
        }
        if (status !== 504 && status !== undefined && status < 500) {
          write.outcome = "failed";
          write.what += ` (refused with ${status})`;
          write.end = now();
          return;
        }
        if (now() - write.start > 20_000) {
          write.end = now();
          return;
        }
        await sleep(100 + attempt * 100);
      }
    };
    const apiWriter = async () => {
      while (!done) {
        await apiWrite(clientPick(hotCustomers));
        await sleep(15);
      }
    };
    const coldWriter = async () => {
      let session = postgres(url, { max: 1, onnotice: () => {} });
      while (!done) {
        await sleep(300 + clientRand() * 1200);
        const customer = clientPick(coldCustomers);
        if (clientRand() < 0.5) {
          await apiWrite(customer);
          continue;
        }
        const write: Write = {
          id: nextWrite++,
          via: "psql",
          what: `INSERT customer ${customer}`,
          start: now(),
          end: 0,
          outcome: "unknown",
          deltas: { [`customer:${customer}`]: 1, all: 1, "year:2004": 1 },
        };
        writes.push(write);
        try {
          await Promise.race([
            session`INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount)
              VALUES ('2004-06-06', ${customer}, 1, 0.08, 1.08)`,
            sleep(8000).then(() => Promise.reject(new Error("no answer"))),
          ]);
          write.outcome = "ok";
        } catch (error) {
          write.outcome = provesNotCommitted(error) ? "failed" : "unknown";
          void session.end({ timeout: 0 });
          session = postgres(url, { max: 1, onnotice: () => {} });
        }
        write.end = now();
      }
      await session.end({ timeout: 1 });
    };

    // Writes made outside the app, on orders it inserted itself (so API orders stay as acknowledged).
    const outsideOrders: { id: number; customer: number; year: number }[] = [];
    const outsideWriter = async () => {
      let session = postgres(url, { max: 1, onnotice: () => {} });
      while (!done) {
        const write: Write = {
          id: nextWrite++,
          via: "psql",
          what: "",
          start: 0,
          end: 0,
          outcome: "unknown",
          deltas: {},
        };
        const order = outsideOrders.length > 0 ? clientPick(outsideOrders) : undefined;
        const choice = clientRand();
        let statement: () => Promise<unknown>;
        let after = () => {};
        if (!order || choice < 0.35) {
          const customer = clientPick(hotCustomers);
          write.what = `INSERT customer ${customer}`;
          write.deltas = { [`customer:${customer}`]: 1, all: 1, "year:2004": 1 };
          statement = async () => {
            const [row] = await session<{ orderid: number }[]>`
              INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount)
              VALUES ('2004-06-06', ${customer}, 1, 0.08, 1.08) RETURNING orderid`;
            after = () => {
              if (row) outsideOrders.push({ id: row.orderid, customer, year: 2004 });
            };
          };
        } else if (choice < 0.45) {
          const rows = [clientPick(hotCustomers), clientPick(hotCustomers), clientPick(hotCustomers)];
          write.what = `COPY customers ${rows.join(", ")}`;
          for (const c of rows) {
            write.deltas[`customer:${c}`] = (write.deltas[`customer:${c}`] ?? 0) + 1;
          }
          write.deltas.all = 3;
          write.deltas["year:2004"] = 3;
          statement = async () => {
            const copy =
              await session`COPY orders (orderdate, customerid, netamount, tax, totalamount) FROM STDIN`.writable();
            copy.end(rows.map((c) => `2004-06-07\t${c}\t1\t0.08\t1.08\n`).join(""));
            await new Promise((resolve, reject) => copy.on("finish", resolve).on("error", reject));
          };
        } else if (choice < 0.65) {
          const to = clientPick(hotCustomers.filter((c) => c !== order.customer));
          write.what = `UPDATE order ${order.id} customer ${order.customer} -> ${to}`;
          write.deltas = { [`customer:${order.customer}`]: -1, [`customer:${to}`]: 1 };
          statement = () => session`UPDATE orders SET customerid = ${to} WHERE orderid = ${order.id}`;
          after = () => {
            order.customer = to;
          };
        } else if (choice < 0.8) {
          const year = order.year === 2004 ? 2005 : 2004;
          write.what = `UPDATE order ${order.id} year ${order.year} -> ${year}`;
          write.deltas = { "year:2004": year === 2004 ? 1 : -1 };
          statement = () => session`UPDATE orders SET orderdate = ${`${year}-06-06`} WHERE orderid = ${order.id}`;
          after = () => {
            order.year = year;
          };
        } else {
          write.what = `DELETE order ${order.id} of customer ${order.customer}`;
          write.deltas = {
            [`customer:${order.customer}`]: -1,
            all: -1,
            ...(order.year === 2004 ? { "year:2004": -1 } : {}),
          };
          statement = () => session`DELETE FROM orders WHERE orderid = ${order.id}`;
          after = () => {
            outsideOrders.splice(outsideOrders.indexOf(order), 1);
          };
        }
        if (order && write.what.includes(`order ${order.id}`)) {
          // Nothing else touches it while this statement runs.
          outsideOrders.splice(outsideOrders.indexOf(order), 1);
          const restore = after;
          after = () => {
            restore();
            if (!write.what.startsWith("DELETE")) outsideOrders.push(order);
          };
        }
        writes.push(write);
        write.start = now();
        try {
          await Promise.race([statement(), sleep(8000).then(() => Promise.reject(new Error("no answer")))]);
          write.outcome = "ok";
          after();
        } catch (error) {
          write.outcome = provesNotCommitted(error) ? "failed" : "unknown";
          if (write.outcome === "unknown") {
            void session.end({ timeout: 0 });
            session = postgres(url, { max: 1, onnotice: () => {} });
          } else if (order && !write.what.startsWith("INSERT")) outsideOrders.push(order);
        }
        write.end = now();
        await sleep(40);
      }
      await session.end({ timeout: 1 });
    };

    const reader = async () => {
      while (!done) {
        const instance = anyInstance();
        const key = clientPick(keys);
        const start = now();
        const result = await readCount(instance, key, clientRand);
        if (result)
          reads.push({ key, via: result.via, instance: instance.index, start, end: now(), value: result.value });
        else readErrors++;
      }
    };

    // Live streams on the watched customers, opened again (on any instance) when one ends.
    const open = new Map<Stream, SseStream>();
    const watcher = async (customer: number) => {
      while (!done) {
        const instance = anyInstance();
        const stream: Stream = {
          key: `customer:${customer}`,
          instance: instance.index,
          openedAt: now(),
          events: [],
          openAtEnd: false,
        };
        const target = `${instance.process?.url}/trpc/orders.watchCount?input=${encodeURIComponent(JSON.stringify({ json: { customerId: customer } }))}`;
        let sse: SseStream;
        try {
          sse = await openSse(target);
        } catch {
          await sleep(100);
          continue;
        }
        if (sse.status !== 200) {
          sse.close();
          await sleep(100);
          continue;
        }
        streams.push(stream);
        open.set(stream, sse);
        let seen = 0;
        for (;;) {
          const event = await sse
            .waitFor((e) => countOf(e) !== undefined, { from: seen, timeoutMs: 1000 })
            .catch(() => undefined);
          if (event) {
            seen = sse.events.indexOf(event) + 1;
            stream.events.push({ at: now(), count: countOf(event) as number });
            continue;
          }
          if (done || (await Promise.race([sse.ended.then(() => true), sleep(0).then(() => false)]))) break;
        }
        if (done) return;
        open.delete(stream);
        sse.close();
        await sleep(50);
      }
    };

    const nemesis = async () => {
      let saved = false;
      while (now() < seconds * 1000) {
        await sleep(between(800, 2500));
        // Snapshots taken now and then: a restore goes back a moment, or a long way.
        if (!saved || rand() < 0.5) {
          await valkey?.save();
          saved = true;
        }
        const kind = pick(faultKinds);
        const instance = pick(instances);
        // Mostly short; some long enough for a silent applier to be replaced, or every instance to bypass.
        const duration = rand() < 0.75 ? between(300, 2500) : between(2500, 7000);
        const fault: Fault = { kind, start: now(), end: 0 };
        say(`${Math.round(fault.start)} ms: ${kind}${isPerInstance(kind) ? ` on instance ${instance.index}` : ""}`);
        faults.push(fault);
        await inject(kind, instance, duration, fault);
        fault.end = now();
      }
    };
    const inject = async (kind: FaultKind, instance: Instance, duration: number, fault: Fault) => {
      const server = valkey as LocalValkey;
      if (isPerInstance(kind)) fault.instance = instance.index;
      switch (kind) {
        case "valkey-killed-empty":
          return server.restart({ fromSnapshot: false, downMs: duration });
        case "valkey-restored-older":
          return server.restart({ fromSnapshot: true, downMs: duration });
        case "valkey-client-killed": {
          const list = String((await command(server.port, "CLIENT", "LIST")) ?? "");
          const ids = [...list.matchAll(/\bid=(\d+)\b.*\bcmd=(\S+)/g)].filter((m) => m[2] !== "client|list");
          const id = ids.length > 0 ? pick(ids)[1] : undefined;
          if (id) await command(server.port, "CLIENT", "KILL", "ID", id);
          return;
        }
        case "valkey-stopped":
          server.signal("SIGSTOP");
          await sleep(duration);
          return server.signal("SIGCONT");
        case "postgres-stopped":
          await pg.signal("SIGSTOP");
          await sleep(duration);
          return pg.signal("SIGCONT");
        case "database-path-silent":
          instance.database.partition();
          await sleep(duration);
          return instance.database.restore();
        case "valkey-path-cut":
          instance.valkey.cut();
          await sleep(duration);
          return instance.valkey.restore();
        case "instance-killed": {
          const process = instance.process;
          if (!process || live().length < 2) return;
          instance.process = undefined;
          await process.stop("SIGKILL");
          await sleep(duration);
          return startInstance(instance);
        }
        case "orders-locked":
          await sql.begin(async (tx) => {
            await tx`LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE`;
            await sleep(duration);
          });
          return;
      }
    };

    const clients = Promise.all([
      apiWriter(),
      apiWriter(),
      coldWriter(),
      outsideWriter(),
      ...Array.from({ length: 4 }, reader),
      ...watchedCustomers.flatMap((c) => [watcher(c), watcher(c)]),
    ]);
    await nemesis();
    done = true;
    await clients;

    // Settled: the database's counts, and every stream still open has shown them (or never will).
    const final = await counts();
    for (const stream of open.keys()) stream.openAtEnd = true;
    const settledBy = now() + 10_000;
    const collect = () => {
      for (const [stream, sse] of open) {
        stream.events = sse.events
          .filter((e) => countOf(e) !== undefined)
          .map((e, i) => stream.events[i] ?? { at: now(), count: countOf(e) as number });
      }
    };
    for (;;) {
      collect();
      const settled = [...open.keys()].every((s) => s.events.at(-1)?.count === final.get(s.key));
      if (settled || now() > settledBy) break;
      await sleep(100);
    }
    for (const sse of open.values()) sse.close();
    const history: History = { base, writes, reads, streams, faults, final, settledAt: now() };
    const violations = check(history);
    const stored = await storedRows(sql);
    const outcomeProblems = writeOutcomeViolations(writes, (w) => stored.get(w.what.split(" (")[0] as string) ?? 0);
    const byVia = { rest: 0, trpc: 0, psql: 0 };
    const byOutcome = { ok: 0, failed: 0, unknown: 0 };
    for (const w of writes) {
      byVia[w.via]++;
      byOutcome[w.outcome]++;
    }
    const faultCounts: Partial<Record<FaultKind, number>> = {};
    for (const f of faults) faultCounts[f.kind] = (faultCounts[f.kind] ?? 0) + 1;
    return {
      seed,
      seconds,
      writes: byVia,
      writeOutcomes: byOutcome,
      readsChecked: reads.length,
      readErrors,
      streams: streams.length,
      streamEvents: streams.reduce((n, s) => n + s.events.length, 0),
      faults: faultCounts,
      violations: [
        ...violations.slice(0, 20).map((v) => explain(history, v, seed)),
        ...outcomeProblems.map((p) => `seed ${seed}: ${p}`),
      ],
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    await valkey?.stop();
    await pg.remove();
  }
}

/** The count an SSE event carries (tRPC's data events); undefined for any other event. */
function countOf(event: SseEvent): number | undefined {
  if (event.event !== undefined && event.event !== "message") return undefined;
  try {
    const data = JSON.parse(event.data ?? "") as { count?: unknown; json?: { count?: unknown } };
    const count = data.json?.count ?? data.count;
    return typeof count === "number" ? count : undefined;
  } catch {
    return undefined;
  }
}

const isPerInstance = (kind: FaultKind) =>
  kind === "database-path-silent" || kind === "valkey-path-cut" || kind === "instance-killed";

async function waitUntilReady(instances: Instance[]): Promise<void> {
  for (const instance of instances) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const health = await fetch(`${instance.process?.url}/health`)
        .then((r) => r.json() as Promise<Record<string, string>>)
        .catch(() => ({}) as Record<string, string>);
      if (health.cache === "up" && health.changes === "up") break;
      if (Date.now() > deadline)
        throw new Error(`instance ${instance.index} did not come up: ${JSON.stringify(health)}`);
      await sleep(100);
    }
  }
}

/** POST /add/ or orders.add with an idempotency key; the HTTP status, or undefined if no answer came. */
async function addOrder(
  instance: Instance,
  via: "rest" | "trpc",
  key: string,
  customer: number,
  date: string,
  net: number,
): Promise<number | undefined> {
  const base = instance.process?.url;
  if (!base) return undefined;
  const signal = AbortSignal.timeout(15_000);
  try {
    const res =
      via === "rest"
        ? await fetch(`${base}/add/`, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": key },
            body: JSON.stringify({ orderdate: date, customerid: customer, netamount: net, tax: 0.08 }),
            signal,
          })
        : await fetch(`${base}/trpc/orders.add`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              json: {
                customerId: customer,
                netAmount: net.toFixed(2),
                tax: "0.08",
                orderDate: date,
                idempotencyKey: key,
              },
            }),
            signal,
          });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return undefined;
  }
}

/** Reads `key` by one of the paths that answer it; undefined when it wasn't answered 200. */
async function readCount(
  instance: Instance,
  key: Key,
  rand: () => number,
): Promise<{ via: string; value: number } | undefined> {
  const base = instance.process?.url;
  if (!base) return undefined;
  const trpc = (path: string, input?: unknown) =>
    `${base}/trpc/${path}${input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify({ json: input }))}`}`;
  const customer = key.startsWith("customer:") ? Number(key.slice("customer:".length)) : undefined;
  const paths: { via: string; url: string; headers?: Record<string, string>; value: (body: unknown) => number }[] = [];
  const restCount = (body: unknown) => (body as { count: number }).count;
  const trpcData = (body: unknown) => (body as { result: { data: { json: unknown } } }).result.data.json;
  if (key === "year:2004") {
    paths.push({
      via: "orders.monthly",
      url: trpc("orders.monthly", { year: 2004 }),
      value: (body) => (trpcData(body) as { orders: number }[]).reduce((n, m) => n + m.orders, 0),
    });
  } else if (customer === undefined) {
    paths.push({ via: "GET /count", url: `${base}/count`, value: restCount });
    paths.push({
      via: "orders.count",
      url: trpc("orders.count"),
      value: (b) => (trpcData(b) as { count: number }).count,
    });
  } else {
    paths.push({ via: "GET /count?customerid", url: `${base}/count?customerid=${customer}`, value: restCount });
    paths.push({
      via: "GET /count?customerid no-store",
      url: `${base}/count?customerid=${customer}`,
      headers: { "cache-control": "no-store" },
      value: restCount,
    });
    paths.push({
      via: "orders.count",
      url: trpc("orders.count", { customerId: customer }),
      value: (b) => (trpcData(b) as { count: number }).count,
    });
    paths.push({
      via: "customers.summary",
      url: trpc("customers.summary", { customerId: customer }),
      value: (b) => (trpcData(b) as { orders: number }).orders,
    });
  }
  const path = paths[Math.floor(rand() * paths.length)] as (typeof paths)[number];
  try {
    const res = await fetch(path.url, { headers: path.headers ?? {}, signal: AbortSignal.timeout(15_000) });
    if (res.status !== 200) {
      await res.arrayBuffer();
      return undefined;
    }
    return { via: path.via, value: path.value(await res.json()) };
  } catch {
    return undefined;
  }
}

/** Rows per API write marker ("add customer C net N"). */
async function storedRows(sql: postgres.Sql): Promise<Map<string, number>> {
  const rows = await sql<{ customerid: number; net: string; n: number }[]>`
    SELECT customerid, netamount::text AS net, count(*)::int AS n FROM orders WHERE netamount >= 1000
    GROUP BY customerid, netamount`;
  return new Map(rows.map((r) => [`add customer ${r.customerid} net ${Number(r.net).toFixed(2)}`, r.n]));
}
