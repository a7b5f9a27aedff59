// Unit tests (pure logic) of taking back the flags npm kept for itself under
// `npm run client …`; test/cli.test.ts runs the same lines through real npm.
import { describe, expect, it } from "vitest";
import { restoreSwallowedFlags } from "../client/npm-swallowed-flags.ts";

const flags = ["customer", "net", "tax", "date"];
const script = { npm_lifecycle_event: "client" };

describe("restoreSwallowedFlags", () => {
  it.each([
    ["outside npm, the words as received", ["count", "9999"], { npm_config_customer: "true" }, ["count", "9999"]],
    ["nothing swallowed", ["count", "--customer", "9999"], script, ["count", "--customer", "9999"]],
    [
      "one flag: its name goes before the one word left",
      ["count", "9999"],
      { ...script, npm_config_customer: "true" },
      ["count", "--customer", "9999"],
    ],
    [
      "`--name=value` kept its value in npm's setting",
      ["add", "23.00"],
      { ...script, npm_config_customer: "9999", npm_config_tax: "2.00", npm_config_net: "true" },
      ["add", "--net", "23.00", "--customer=9999", "--tax=2.00"],
    ],
    [
      "flags after `--` stay where they were",
      ["add", "9999", "--net", "23.00", "--tax", "2.00"],
      { ...script, npm_config_customer: "true" },
      ["add", "--customer", "9999", "--net", "23.00", "--tax", "2.00"],
    ],
  ])("%s", (_, received, env, expected) => {
    expect(restoreSwallowedFlags(flags, received, env)).toEqual({ args: expected });
  });

  it.each([
    [
      "two flags lost their names",
      ["add", "23.00", "2.00"],
      { ...script, npm_config_customer: "1", npm_config_net: "true", npm_config_tax: "true" },
      ["net", "tax"],
    ],
    ["npm took the value too (`--customer -1`)", ["count"], { ...script, npm_config_customer: "true" }, ["customer"]],
    ["one flag but two words left", ["add", "2", "--net", "3", "x"], { ...script, npm_config_tax: "true" }, ["tax"]],
  ])("refuses when %s", (_, received, env, lost) => {
    expect(restoreSwallowedFlags(flags, received, env)).toEqual({ lost });
  });
});
