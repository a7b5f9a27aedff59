// `npm run client count --customer 9999` never shows the script "--customer":
// npm takes it as its own config, sets npm_config_customer=true and passes
// just "9999". We give such flags back their values from the leftover
// positionals, in the documented order (customer, net, tax, date), since npm
// does not tell in which order they were typed.

export function recoverNpmFlags<Flag extends string>(
  flags: readonly Flag[],
  positionals: string[],
  env: NodeJS.ProcessEnv,
): { values: Partial<Record<Flag, string>>; unused: string[] } {
  const values: Partial<Record<Flag, string>> = {};
  const leftovers = [...positionals];
  for (const flag of flags) {
    if (env[`npm_config_${flag}`] !== "true") continue;
    const value = leftovers.shift();
    if (value !== undefined) values[flag] = value;
  }
  return { values, unused: leftovers };
}
