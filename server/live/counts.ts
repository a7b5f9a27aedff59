// Reads live counts from the database, many at once: the total (if asked)
// and every asked customer's count in one query each, from the aggregates
// the triggers keep exact. Never from the cache: a recomputation must read a
// snapshot no older than the previous one (count-hub.ts).
import type { Queries } from "../../db/queries.ts";
import type { CountInput } from "./count-hub.ts";

export function countLoader(queries: Queries, timeoutMs: number) {
  return async (inputs: readonly CountInput[]): Promise<number[]> => {
    const customerIds = inputs.flatMap((input) => (input.customerId === undefined ? [] : [input.customerId]));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from the database within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const [total, perCustomer] = await Promise.race([
        Promise.all([
          inputs.some((input) => input.customerId === undefined) ? queries.countOrders.execute() : undefined,
          customerIds.length > 0 ? queries.countCustomersOrders.execute({ customerIds }) : [],
        ]),
        timeout,
      ]);
      const byCustomer = new Map(perCustomer.map((row) => [row.customerId, row.count]));
      return inputs.map((input) =>
        input.customerId === undefined ? (total?.[0]?.count ?? 0) : (byCustomer.get(input.customerId) ?? 0),
      );
    } finally {
      clearTimeout(timer);
    }
  };
}
