// Each invalid field gets one message, the one that says what is wrong with it.
import { describe, expect, it } from "vitest";
import { addOrderInput, describeIssues } from "../server/inputs.ts";

const problems = (input: unknown) => {
  const result = addOrderInput.safeParse(input);
  return result.success ? [] : describeIssues(result.error).split("; ");
};

describe("orders.add input", () => {
  it.each([
    [
      { customerId: 1, netAmount: "abc", tax: 1 },
      ["netAmount: must be a non-negative amount with at most two decimals"],
    ],
    [
      { customerId: 1, netAmount: "1.234", tax: "2" },
      ["netAmount: must be a non-negative amount with at most two decimals"],
    ],
    [
      { customerId: 1, netAmount: 1.234, tax: 2 },
      ["netAmount: must be a non-negative amount with at most two decimals"],
    ],
    [{ customerId: 1, netAmount: "1", tax: null }, ["tax: must be a non-negative amount with at most two decimals"]],
    [{ customerId: 1, netAmount: "99999999999.99", tax: "1" }, ["netAmount: must not exceed 9999999999.99"]],
    [{ customerId: 1, netAmount: "9999999999.99", tax: "1" }, ["tax: netAmount + tax must not exceed 9999999999.99"]],
    [
      { customerId: "x", netAmount: "x", tax: "1", orderDate: "2023-02-30" },
      [
        "customerId: must be a number",
        "netAmount: must be a non-negative amount with at most two decimals",
        "orderDate: is not a calendar date",
      ],
    ],
  ])("%j → %j", (input, expected) => {
    expect(problems(input)).toEqual(expected);
  });
});
