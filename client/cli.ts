#!/usr/bin/env node
// dellstore-orders count [--customer N]
// dellstore-orders add --customer N --net AMOUNT --tax AMOUNT [--date YYYY-MM-DD]
// (also `npm run client …`). Prints the result as JSON; SERVER_URL says where the
// server is, API_TOKEN is sent for writes. Every flag is checked before any request.
import { TRPCClientError } from "@trpc/client";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import type { z } from "zod";
import { addOrderInput, customerId, describeIssues, isoDate, money } from "../server/inputs.ts";
import { createClient } from "./index.ts";
import { npmSetting, recoverTypedArgs, swallowedFlags } from "./npm-typed-args.ts";

class UsageError extends Error {}

const defaultServer = "http://127.0.0.1:8000";
const serverUrl = () => process.env.SERVER_URL || defaultServer;
const client = () => createClient({ url: serverUrl(), token: process.env.API_TOKEN });
const printJson = (value: unknown) => console.log(JSON.stringify(value));

/** A commander argument parser that checks the flag's text with the server's own rule. */
function checked<T>(schema: z.ZodType<unknown, T>, toInput: (text: string) => T = (text) => text as T) {
  return (text: string) => {
    const result = schema.safeParse(toInput(text));
    if (!result.success) throw new InvalidArgumentError(result.error.issues[0]?.message ?? "is invalid");
    return text;
  };
}

function wholeNumber(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError("must be a positive whole number");
  return Number(text);
}
const customerOption = () => new Option("--customer <id>", "customer id").argParser(checked(customerId, wholeNumber));
const amountOption = (flag: string, what: string) => new Option(`--${flag} <amount>`, what).argParser(checked(money));

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
  npm run client count --customer 9999
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
    new Option("--date <YYYY-MM-DD>", "order date (default: today, by the server's clock)").argParser(checked(isoDate)),
  )
  .action(async (flags: { customer: string; net: string; tax: string; date?: string }) => {
    const input = {
      customerId: Number(flags.customer),
      netAmount: flags.net,
      tax: flags.tax,
      ...(flags.date === undefined ? {} : { orderDate: flags.date }),
    };
    // Each flag is fine on its own; the order as a whole (net + tax fits) is checked before sending too.
    const checkedInput = addOrderInput.safeParse(input);
    if (!checkedInput.success) throw new UsageError(`error: ${describeIssues(checkedInput.error)}`);
    printJson(await client().orders.add.mutate(input));
  });

for (const command of program.commands) command.exitOverride().showHelpAfterError();

const flagNames = ["customer", "net", "tax", "date"];

/**
 * Our arguments as typed. Under `npm run client` without `--`, npm has kept the
 * flag names (see npm-typed-args.ts): take them back from npm's log, or from
 * npm's settings where they alone say it, else refuse rather than guess.
 */
function typedArgs(received: string[], env: NodeJS.ProcessEnv): string[] {
  const swallowed = swallowedFlags(flagNames, received, env);
  if (swallowed.length === 0) return received;
  const recovered = recoverTypedArgs(received, env);
  if (recovered) return recovered;
  const separate = swallowed.filter((flag) => npmSetting(env, flag) === "true");
  const attached = swallowed.filter((flag) => !separate.includes(flag)).map((f) => `--${f}=${npmSetting(env, f)}`);
  // `--flag=value` keeps its value in npm's settings; one bare flag can only own the one word left after the command.
  if (separate.length === 0) return [...received, ...attached];
  if (separate.length === 1 && received.length === 2)
    return [received[0] as string, `--${separate[0]}`, received[1] as string, ...attached];
  const command = received[0] ?? "<command>";
  const line =
    command === "add" ? "add --customer N --net AMOUNT --tax AMOUNT [--date YYYY-MM-DD]" : `${command} [--customer N]`;
  throw new UsageError(
    `error: npm took ${separate.map((f) => `--${f}`).join(", ")} as its own settings, so the order they were typed in is lost; refusing to guess. Put -- after the script name, or run the command directly:
  npm run client -- ${line}
  npx dellstore-orders ${line}`,
  );
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
