#!/usr/bin/env node
// dellstore-orders count [--customer N]
// dellstore-orders add --customer N --net AMOUNT --tax AMOUNT [--date YYYY-MM-DD]
// (also `npm run client -- …`). Prints the result as JSON; SERVER_URL says where the
// server is, API_TOKEN is sent for writes. Every flag is checked before any request.
import { TRPCClientError } from "@trpc/client";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { createClient } from "./index.ts";
import { parseCents } from "./money.ts";
import { argsAsTyped } from "./npm-run-args.ts";
import { customerIdTextProblem, isoDateProblem, moneyProblem, totalFits, totalMessage } from "./rules.ts";

class UsageError extends Error {}

// `dellstore-orders --help | head`: a reader that stops early is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  process.exit(process.exitCode ?? 0);
});

const defaultServer = "http://127.0.0.1:8000";
const serverUrl = () => process.env.SERVER_URL || defaultServer;
const client = () => createClient({ url: checkedServerUrl(serverUrl()), token: process.env.API_TOKEN });

/**
 * SERVER_URL as a URL the client can send to, or a UsageError saying what is
 * wrong with it: without a scheme, fetch fails with ERR_INVALID_URL (or "unknown
 * scheme" for localhost:8000, which parses as a URL of scheme "localhost:"),
 * which would read as a server that isn't running.
 */
function checkedServerUrl(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if ((url?.protocol === "http:" || url?.protocol === "https:") && url.hostname !== "") return value;
  const like = value.includes("://") || value === "" ? defaultServer : `http://${value}`;
  throw new UsageError(
    `error: SERVER_URL must be a URL starting with http:// or https://, like ${like}; it is ${JSON.stringify(value)}`,
  );
}
const printJson = (value: unknown) => console.log(JSON.stringify(value));

/** A commander argument parser that checks the flag's text with the server's own rule (rules.ts). */
function checked(problem: (text: string) => string | undefined) {
  return (text: string) => {
    const found = problem(text);
    if (found !== undefined) throw new InvalidArgumentError(found);
    return text;
  };
}

const customerOption = () => new Option("--customer <id>", "customer id").argParser(checked(customerIdTextProblem));
const amountOption = (flag: string, what: string) =>
  new Option(`--${flag} <amount>`, what).argParser(checked(moneyProblem));

const program = new Command("dellstore-orders")
  .description(
    "Count and add dellstore orders through the server's typed tRPC API; prints JSON.\n" +
      `The server is at SERVER_URL (default ${defaultServer}); API_TOKEN is sent with writes.`,
  )
  .showHelpAfterError()
  .exitOverride()
  .addHelpText(
    "after",
    `
Examples:
  npx dellstore-orders count --customer 9999
  npx dellstore-orders add --customer 9999 --net 23.00 --tax 2.00 --date 2023-03-10
  npm run client -- count --customer 9999
  npm run client -- add --customer 9999 --net 23.00 --tax 2.00`,
  );

program
  .command("count")
  .description("how many orders there are, in all or of one customer")
  .addOption(customerOption())
  .action(async ({ customer }: { customer?: string }) => {
    printJson(await client().orders.count.query(customer === undefined ? undefined : { customerId: Number(customer) }));
  });

program
  .command("add")
  .description("add an order and print it (total = net + tax)")
  .addOption(customerOption().makeOptionMandatory())
  .addOption(amountOption("net", "net amount, e.g. 23.00").makeOptionMandatory())
  .addOption(amountOption("tax", "tax, e.g. 2.00").makeOptionMandatory())
  .addOption(
    new Option("--date <YYYY-MM-DD>", "order date (default: today, by the server's clock)").argParser(
      checked(isoDateProblem),
    ),
  )
  .action(async (flags: { customer: string; net: string; tax: string; date?: string }) => {
    const input = {
      customerId: Number(flags.customer),
      netAmount: flags.net,
      tax: flags.tax,
      ...(flags.date === undefined ? {} : { orderDate: flags.date }),
    };
    // Each flag is fine on its own; the order as a whole (net + tax fits) is checked before sending too.
    if (!totalFits(parseCents(flags.net) ?? 0n, parseCents(flags.tax) ?? 0n))
      throw new UsageError(`error: ${totalMessage("--net", "--tax")}`);
    printJson(await client().orders.add.mutate(input));
  });

for (const command of program.commands) command.exitOverride().showHelpAfterError();

/**
 * Our arguments as typed. Under `npm run client` without `--`, npm keeps our flags'
 * names for itself (see npm-run-args.ts): they are restored where its environment
 * makes the line certain, else refused with the line to type instead.
 */
function typedArgs(received: string[], env: NodeJS.ProcessEnv): string[] {
  const options = program.commands.flatMap((command) => command.options);
  // Every flag of ours takes a value: "--customer <id>" → { customer: "<id>" }.
  const flags = Object.fromEntries(options.map((o) => [o.long?.slice(2) ?? "", o.flags.split(" ")[1] ?? ""]));
  const typed = argsAsTyped({ commands: program.commands.map((command) => command.name()), flags }, received, env);
  if ("refused" in typed) throw new UsageError(typed.refused);
  return typed.args;
}

function describe(error: unknown): string {
  if (error instanceof TRPCClientError && error.data === undefined && !error.shape) {
    return `error: cannot reach the server at ${serverUrl()} (${rootCause(error)}); is it running? SERVER_URL says where it is`;
  }
  return `error: ${error instanceof Error ? error.message : String(error)}`;
}

function rootCause(error: Error): string {
  let cause: unknown = error;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  const { code, message } = cause as { code?: string; message?: string };
  return code ?? message ?? "no answer";
}

try {
  await program.parseAsync(typedArgs(process.argv.slice(2), process.env), { from: "user" });
} catch (error) {
  if (error instanceof CommanderError) {
    // commander has printed the message (or the help) already.
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else if (error instanceof UsageError) {
    console.error(error.message);
    process.exitCode = 2;
  } else {
    console.error(describe(error));
    process.exitCode = 1;
  }
}
