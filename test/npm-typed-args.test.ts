// What npm hands a script, and taking the typed line back from npm's logged argv
// only when it accounts for exactly that (pure logic; test/cli.test.ts runs real npm).
import { describe, expect, it } from "vitest";
import { parseLoggedArgv, passedOn, swallowedFlags, typedAfterScript } from "../client/npm-typed-args.ts";

const flags = ["customer", "net", "tax", "date"];
const env = {
  npm_lifecycle_event: "client",
  npm_config_customer: "true",
  npm_config_net: "true",
  npm_config_tax: "true",
};

describe("npm's swallowed flags", () => {
  it("are ours, set in npm's settings and absent from the arguments", () => {
    expect(swallowedFlags(flags, ["add", "2.00", "23.00", "9999"], env)).toEqual(["customer", "net", "tax"]);
    expect(swallowedFlags(flags, ["add", "--customer", "9999", "--net", "1", "--tax", "1"], env)).toEqual([]);
    expect(swallowedFlags(flags, ["add", "2.00"], { ...env, npm_lifecycle_event: undefined })).toEqual([]);
  });

  it("reduce the typed line to what the script receives", () => {
    const typed = ["add", "--tax", "2.00", "--net", "23.00", "--customer", "9999"];
    expect(passedOn(typed, env)).toEqual(["add", "2.00", "23.00", "9999"]);
    // --customer=9999 is logged as `--customer 9999`, but npm kept the value.
    expect(passedOn(["count", "--customer", "9999"], { npm_config_customer: "9999" })).toEqual(["count"]);
    expect(passedOn(["count", "--", "--customer", "9999"], {})).toEqual(["count", "--customer", "9999"]);
  });
});

describe("the typed line, from npm's logged argv", () => {
  const logged = [
    "run",
    "--loglevel",
    "silent",
    "client",
    "add",
    "--tax",
    "2.00",
    "--net",
    "23.00",
    "--customer",
    "9999",
  ];

  it("is the words after the script's name, when they account for what was received", () => {
    expect(typedAfterScript(logged, "client", ["add", "2.00", "23.00", "9999"], env)).toEqual(logged.slice(4));
  });

  it("is unknown when they don't (another npm run, or words npm consumed that we can't account for)", () => {
    expect(typedAfterScript(logged, "client", ["add", "23.00", "2.00", "9999"], env)).toBeUndefined();
    expect(typedAfterScript(logged, "test", ["add", "2.00", "23.00", "9999"], env)).toBeUndefined();
  });

  it("parses npm's `verbose argv` line", () => {
    expect(parseLoggedArgv('"run" "client" "add" "--note" "say \\"hi\\""')).toEqual([
      "run",
      "client",
      "add",
      "--note",
      'say "hi"',
    ]);
    expect(parseLoggedArgv("nothing quoted")).toBeUndefined();
  });
});
