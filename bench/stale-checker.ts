// Runs beside a load scenario: write → read sequences over HTTP that count
// every read started after an acknowledged write yet answering older data.
// Its customers are written by nobody else, so their counts are known exactly;
// the total only grows during a mix, so it must exceed the last one seen.

export interface StaleReport {
  /** Write → read sequences completed. */
  sequences: number;
  /** Reads that missed a write acknowledged before they started. */
  stale: number;
}

const trpcGet = (procedure: string, input: unknown) =>
  `/trpc/${procedure}?input=${encodeURIComponent(JSON.stringify({ json: input }))}`;

export function startStaleChecker(url: string, customerIds: readonly number[]): { stop(): Promise<StaleReport> } {
  let running = true;
  const report: StaleReport = { sequences: 0, stale: 0 };
  const get = async <T>(path: string): Promise<T> => (await (await fetch(`${url}${path}`)).json()) as T;
  const count = async (customerId?: number) =>
    (await get<{ count: number }>(customerId === undefined ? "/count" : `/count?customerid=${customerId}`)).count;
  const summaryOrders = async (customerId: number) =>
    (await get<{ result: { data: { json: { orders: number } } } }>(trpcGet("customers.summary", { customerId }))).result
      .data.json.orders;

  const loop = (async () => {
    const expected = new Map<number, number>();
    for (const id of customerIds) expected.set(id, await count(id));
    let total = await count();
    for (let i = 0; running; i++) {
      const id = customerIds[i % customerIds.length] as number;
      const res = await fetch(`${url}/add/`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ customerid: id, netamount: 1, tax: 0.08 }),
      });
      await res.arrayBuffer();
      if (res.status !== 200) continue;
      const mine = (expected.get(id) as number) + 1;
      expected.set(id, mine);
      const [perCustomer, summary, now] = await Promise.all([count(id), summaryOrders(id), count()]);
      if (perCustomer !== mine) report.stale++;
      if (summary !== mine) report.stale++;
      if (now <= total) report.stale++;
      total = now;
      report.sequences++;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return report;
    },
  };
}
