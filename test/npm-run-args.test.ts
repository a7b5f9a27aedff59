// Unit tests (pure logic) of reading the line as typed back from what npm passes a
// script under `npm run client …` without `--`: the words it leaves and its
// npm_config_* environment, as npm 11 sets them (see client/npm-run-args.ts).
// test/cli.test.ts runs such lines through real npm.
import { describe, expect, it } from "vitest";
import { argsAsTyped } from "../client/npm-run-args.ts";

const cli = {
  commands: ["count", "add"],
  flags: { customer: "<id>", net: "<amount>", tax: "<amount>", date: "<YYYY-MM-DD>" },
};
const script = { npm_lifecycle_event: "client", npm_command: "run" };
const refused = (received: string[], env: Record<string, string>) => {
  const typed = argsAsTyped(cli, received, { ...script, ...env });
  if (!("refused" in typed)) throw new Error(`restored as ${JSON.stringify(typed.args)}`);
  return typed.refused.split("\n");
};

describe("argsAsTyped", () => {
  it.each([
    ["outside npm, the words as received", ["count", "9999"], { npm_config_customer: "true" }, ["count", "9999"]],
    [
      "under npx (npm exec), the words as received",
      ["count", "9999"],
      { npm_lifecycle_event: "npx", npm_command: "exec", npm_config_customer: "true" },
      ["count", "9999"],
    ],
    [
      "nothing taken (`--` after the script's name)",
      ["count", "--customer", "9999"],
      script,
      ["count", "--customer", "9999"],
    ],
    [
      "one flag without its value: its name goes before the one word left (the card's line)",
      ["count", "9999"],
      { ...script, npm_config_customer: "true" },
      ["count", "--customer", "9999"],
    ],
    [
      "`--name=value`: the value is npm's setting",
      ["count"],
      { ...script, npm_config_customer: "9999" },
      ["count", "--customer=9999"],
    ],
    [
      "several `--name=value` flags and one flag without its value",
      ["add", "23.00"],
      { ...script, npm_config_customer: "9999", npm_config_tax: "2.00", npm_config_net: "true" },
      ["add", "--net", "23.00", "--customer=9999", "--tax=2.00"],
    ],
    [
      "a kept value is passed on as npm kept it, for commander to check (`--customer=-1`)",
      ["count"],
      { ...script, npm_config_customer: "-1" },
      ["count", "--customer=-1"],
    ],
    [
      "flags after `--` stay where they were",
      ["add", "9999", "--net", "23.00", "--tax", "2.00"],
      { ...script, npm_config_customer: "true" },
      ["add", "--customer", "9999", "--net", "23.00", "--tax", "2.00"],
    ],
    [
      "a flag typed after `--` is not one npm took (its setting comes from elsewhere)",
      ["count", "--customer", "9999"],
      { ...script, npm_config_customer: "true" },
      ["count", "--customer", "9999"],
    ],
    [
      "kept values go before a `--` the script received",
      ["add", "9999", "--", "x"],
      { ...script, npm_config_customer: "true", npm_config_net: "1", npm_config_tax: "2" },
      ["add", "--customer", "9999", "--net=1", "--tax=2", "--", "x"],
    ],
    [
      "the word left may come before the command's name: commander reads it as typed",
      ["9999", "count"],
      { ...script, npm_config_customer: "true" },
      ["--customer", "9999", "count"],
    ],
  ])("%s", (_, received, env, expected) => {
    expect(argsAsTyped(cli, received, env)).toEqual({ args: expected });
  });

  it("refuses the card's add line, which npm passes on as three values without their flags", () => {
    const env = { npm_config_customer: "true", npm_config_net: "true", npm_config_tax: "true" };
    expect(refused(["add", "9999", "23.00", "2.00"], env)).toEqual([
      "error: npm kept --customer, --net and --tax for itself and passed on 9999, 23.00 and 2.00 without them, so which value goes with which flag can't be known; nothing was sent. Put -- after `npm run client` and npm passes every word on as typed:",
      "  npm run client -- add --customer <id> --net <amount> --tax <amount>",
    ]);
  });

  it("names the values npm kept in the line to type instead, and placeholders for those it lost", () => {
    const env = {
      npm_config_customer: "true",
      npm_config_net: "23.10",
      npm_config_tax: "2.20",
      npm_config_date: "true",
    };
    expect(refused(["add", "2023-03-11", "9999"], env).at(-1)).toBe(
      "  npm run client -- add --customer <id> --net 23.10 --tax 2.20 --date <YYYY-MM-DD>",
    );
  });

  it("keeps the words that arrived as typed, quoted for the shell where needed, and the script's name", () => {
    const env = {
      npm_lifecycle_event: "orders",
      npm_config_net: "true",
      npm_config_tax: "true",
      npm_config_customer: "it's",
    };
    const lines = refused(["add", "1", "2", "--", "--date", "2023-03-11"], env);
    expect(lines[0]).toContain("Put -- after `npm run orders`");
    expect(lines.at(-1)).toBe(
      "  npm run orders -- add --customer 'it'\\''s' --net <amount> --tax <amount> -- --date 2023-03-11",
    );
  });

  it.each([
    [
      "npm took the value too (`--customer -1`)",
      ["count"],
      { npm_config_customer: "true" },
      'npm kept --customer for itself and no value for it reached the CLI (npm takes a value starting with "-", like -1, for a setting of its own too)',
      "npm run client -- count --customer <id>",
    ],
    [
      "one flag but two words left",
      ["count", "9999", "x"],
      { npm_config_customer: "true" },
      "npm kept --customer for itself and passed on 9999 and x without it, so which is its value can't be known",
      "npm run client -- count --customer <id>",
    ],
    [
      "a flag given twice",
      ["count", "9999", "9998"],
      { npm_config_customer: "true\n\ntrue" },
      "npm kept --customer, given more than once, for itself",
      "npm run client -- count --customer <id>",
    ],
    [
      "a flag npm read as turned off (`--no-customer`, `--customer=`, `--customer false`)",
      ["count", "9999"],
      { npm_config_customer: "" },
      "npm kept --customer for itself without a value (it reads `--customer=`, `--customer false` and `--no-customer` as turning a setting off)",
      "npm run client -- count --customer <id>",
    ],
    [
      "no command among the words",
      ["9999", "1"],
      { npm_config_customer: "true", npm_config_net: "true" },
      "npm kept --customer and --net for itself and passed on 9999 and 1 without them, so which value goes with which flag can't be known",
      "npm run client -- <command> --customer <id> --net <amount>",
    ],
  ])("refuses when %s, saying why and what to type", (_, received, env, why, line) => {
    expect(refused(received, env)).toEqual([
      `error: ${why}; nothing was sent. Put -- after \`npm run client\` and npm passes every word on as typed:`,
      `  ${line}`,
    ]);
  });
});
