// npm run client count [--customer N]
// npm run client add --customer N --net 23.00 --tax 2.00 [--date YYYY-MM-DD]
// Prints the result as JSON; SERVER_URL says where the server is, API_TOKEN is sent for writes.
import { parseArgs } from "node:util";
import { TRPCClientError } from "@trpc/client";
import { createClient } from "./index.ts";
import { recoverNpmFlags } from "./npm-flags.ts";

const usage = `usage: npm run client count [--customer N]
       npm run client add --customer N --net AMOUNT --tax AMOUNT [--date YYYY-MM-DD]`;

const flags = ["customer", "net", "tax", "date"] as const;

async function main(argv: string[]): Promise<unknown> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: Object.fromEntries(flags.map((flag) => [flag, { type: "string" }])) as Record<
      (typeof flags)[number],
      { type: "string" }
    >,
  });
  const [command, ...rest] = positionals;
  const recovered = recoverNpmFlags(flags, rest, process.env);
  if (recovered.unused.length > 0) throw new UsageError();
  const options = { ...recovered.values, ...values };
  const client = createClient({ url: process.env.SERVER_URL ?? "http://127.0.0.1:8000", token: process.env.API_TOKEN });
  switch (command) {
    case "count":
      return client.orders.count.query(
        options.customer === undefined ? undefined : { customerId: Number(options.customer) },
      );
    case "add":
      if (options.customer === undefined || options.net === undefined || options.tax === undefined)
        throw new UsageError();
      return client.orders.add.mutate({
        customerId: Number(options.customer),
        netAmount: options.net,
        tax: options.tax,
        orderDate: options.date,
      });
    default:
      throw new UsageError();
  }
}

class UsageError extends Error {}

try {
  console.log(JSON.stringify(await main(process.argv.slice(2))));
} catch (error) {
  console.error(describe(error));
  process.exitCode = error instanceof UsageError ? 2 : 1;
}

function describe(error: unknown): string {
  if (error instanceof UsageError) return usage;
  if (error instanceof TRPCClientError && error.data === undefined && !error.shape) {
    const server = process.env.SERVER_URL ?? "http://127.0.0.1:8000";
    return `error: cannot reach the server at ${server} (${rootCause(error)}); is it running? SERVER_URL says where it is`;
  }
  return `error: ${error instanceof Error ? error.message : String(error)}`;
}

function rootCause(error: Error): string {
  let cause: unknown = error;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  const { code, message } = cause as { code?: string; message?: string };
  return code ?? message ?? "no answer";
}
