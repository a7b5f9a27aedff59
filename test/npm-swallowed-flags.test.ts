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

  describe("with npm's argv from its debug log", () => {
    const env = { ...script, npm_config_customer: "true", npm_config_net: "true", npm_config_tax: "true" };
    const npmLine = [
      "node",
      "/usr/bin/npm",
      "run",
      "client",
      "add",
      "--tax",
      "2.20",
      "--net",
      "23.10",
      "--customer",
      "9999",
    ];

    it("takes the line as typed when it accounts for exactly the words passed on", () => {
      expect(
        restoreSwallowedFlags(flags, ["add", "2.20", "23.10", "9999"], env, [["sh", "-c", "tsx"], npmLine]),
      ).toEqual({
        args: ["add", "--tax", "2.20", "--net", "23.10", "--customer", "9999"],
      });
    });

    it("joins a flag npm kept a value for (`--net=23.10`, which npm logs as `--net 23.10`) to that value", () => {
      const mixed = { ...script, npm_config_customer: "true", npm_config_net: "23.10", npm_config_date: "true" };
      const logged = ["run", "client", "add", "--net", "23.10", "--date", "2023-03-11", "--customer", "9999"];
      expect(restoreSwallowedFlags(flags, ["add", "2023-03-11", "9999"], mixed, [logged])).toEqual({
        args: ["add", "--net=23.10", "--date", "2023-03-11", "--customer", "9999"],
      });
      const otherValue = ["run", "client", "add", "--net", "23.11", "--date", "2023-03-11", "--customer", "9999"];
      expect(restoreSwallowedFlags(flags, ["add", "2023-03-11", "9999"], mixed, [otherValue])).toEqual({
        lost: ["customer", "date"],
      });
    });

    it.each([
      ["another run's line (other words)", ["add", "2.20", "23.10", "9998"], [npmLine]],
      ["no ancestor line (no /proc)", ["add", "2.20", "23.10", "9999"], []],
      [
        "a line with a word npm kept that is not ours",
        ["add", "2.20", "23.10", "9999"],
        [[...npmLine.slice(0, 4), "--silent", ...npmLine.slice(4)]],
      ],
    ])("still refuses with %s", (_, received, ancestors) => {
      expect(restoreSwallowedFlags(flags, received, env, ancestors)).toEqual({ lost: ["customer", "net", "tax"] });
    });
  });
});
