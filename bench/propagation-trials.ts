// How long a write made outside the app (as psql would) takes to show through
// the API: commit an INSERT on a separate connection, then poll the cached
// count until it changes. Shared by the test and `npm run bench:propagation`.
import type postgres from "postgres";
import { percentile } from "./environment.ts";

export interface PropagationResult {
  latencies: number[];
  p50: number;
  p99: number;
  max: number;
}

export async function measurePropagation(
  serverUrl: string,
  sql: postgres.Sql,
  customerId: number,
  trials: number,
): Promise<PropagationResult> {
  const count = async () =>
    ((await (await fetch(`${serverUrl}/count?customerid=${customerId}`)).json()) as { count: number }).count;
  const latencies: number[] = [];
  let expected = await count();
  for (let trial = 0; trial < trials; trial++) {
    await count(); // cached
    await sql`INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount)
      VALUES ('2004-06-06', ${customerId}, 1, 0.08, 1.08)`;
    const committed = performance.now();
    expected++;
    while ((await count()) !== expected) {
      if (performance.now() - committed > 2000) throw new Error(`the API did not show ${expected} within 2 s`);
    }
    latencies.push(performance.now() - committed);
  }
  latencies.sort((a, b) => a - b);
  return {
    latencies,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? Number.NaN,
  };
}
