// `npm run client count --customer 9999` (no `--` after the script's name) never
// shows the script its flag: npm takes every `--name` typed before a `--` as a
// setting of its own, warns about it, and passes on only the other words. Its
// environment keeps what it took: `npm_config_customer` is "true" when the value
// followed as a word of its own (passed on, in its place among the others), the
// value itself for `--customer=9999`, "" for `--customer=`, `--customer false`
// and `--no-customer`, and the values joined by blank lines for a flag given
// twice (npm 11). The order the flags were typed in is kept nowhere the script
// can see.
//
// So the line as typed is certain when every flag npm took either kept its value
// (`=value`) or is the only one that lost it and exactly one word is left over to
// be that value; then it is restored. Anything else is refused, with the line to
// type instead: a guess could store another order than the one typed
// (`--tax 2.00 --net 3.00`).

export type Env = Record<string, string | undefined>;

export interface Cli {
  /** The command names, `count` and `add`. */
  commands: readonly string[];
  /** Each flag that takes a value, by name without the dashes, with what its usage shows for the value: `{ customer: "<id>" }`. */
  flags: Readonly<Record<string, string>>;
}

export type ArgsAsTyped =
  | { args: string[] }
  /** Why the line as typed can't be known, and the line to type instead: what to print. */
  | { refused: string };

/** npm's setting for one of our flags, if it took that flag. */
const npmSetting = (env: Env, flag: string) => env[`npm_config_${flag.replaceAll("-", "_")}`];

/**
 * The arguments as typed, given those the script received and its environment.
 * Outside an npm script (no npm_lifecycle_event), and under `npx` (which passes on
 * every word after the command's name), they are the ones received.
 */
export function argsAsTyped(cli: Cli, received: readonly string[], env: Env): ArgsAsTyped {
  if (!env.npm_lifecycle_event || env.npm_command === "exec") return { args: [...received] };
  const flags = Object.keys(cli.flags);
  const visible = (flag: string) => received.some((word) => word === `--${flag}` || word.startsWith(`--${flag}=`));
  const taken = flags.filter((flag) => npmSetting(env, flag) !== undefined && !visible(flag));
  if (taken.length === 0) return { args: [...received] };

  const settingOf = (flag: string) => npmSetting(env, flag) as string;
  const separated = taken.filter((flag) => settingOf(flag) === "true");
  const unusable = taken.filter((flag) => settingOf(flag) === "" || settingOf(flag).includes("\n\n"));
  const kept = taken.filter((flag) => !separated.includes(flag) && !unusable.includes(flag));
  const leftovers = leftoverPositions(cli, received);

  // The flags whose values npm kept go before any `--` (after one, commander reads words as arguments).
  const end = received.includes("--") ? received.indexOf("--") : received.length;
  const args = [
    ...received.slice(0, end),
    ...kept.map((flag) => `--${flag}=${settingOf(flag)}`),
    ...received.slice(end),
  ];
  const [only, ...more] = separated;
  if (unusable.length === 0 && only === undefined) return { args };
  if (unusable.length === 0 && only !== undefined && more.length === 0 && leftovers.length === 1) {
    const at = leftovers[0] as number;
    return { args: [...args.slice(0, at), `--${only}`, ...args.slice(at)] };
  }
  return { refused: refusal(cli, received, env, { taken, separated, unusable, leftovers }) };
}

/**
 * Where the words that npm passed on without a flag are: neither the command's
 * name nor the value of a flag that arrived whole, and before any `--`.
 */
function leftoverPositions(cli: Cli, received: readonly string[]): number[] {
  const positions: number[] = [];
  let command = false;
  for (let i = 0; i < received.length; i++) {
    const word = received[i] as string;
    if (word === "--") break;
    if (word.startsWith("-")) {
      if (Object.hasOwn(cli.flags, word.slice(2)) && word.startsWith("--")) i++;
    } else if (!command && cli.commands.includes(word)) command = true;
    else positions.push(i);
  }
  return positions;
}

function refusal(
  cli: Cli,
  received: readonly string[],
  env: Env,
  found: { taken: string[]; separated: string[]; unusable: string[]; leftovers: number[] },
): string {
  const { taken, separated, unusable, leftovers } = found;
  const words = list(leftovers.map((at) => shellWord(received[at] as string)));
  const why: string[] = [];
  for (const flag of unusable) {
    why.push(
      npmSetting(env, flag)?.includes("\n\n")
        ? `npm kept --${flag}, given more than once, for itself`
        : `npm kept --${flag} for itself without a value (it reads \`--${flag}=\`, \`--${flag} false\` and \`--no-${flag}\` as turning a setting off)`,
    );
  }
  const [one] = separated;
  if (separated.length > 1) {
    why.push(
      `npm kept ${list(separated.map((flag) => `--${flag}`))} for itself and ${words ? `passed on ${words} without them` : "passed on no value for them"}, so which value goes with which flag can't be known`,
    );
  } else if (one !== undefined && leftovers.length === 0) {
    why.push(
      `npm kept --${one} for itself and no value for it reached the CLI (npm takes a value starting with "-", like -1, for a setting of its own too)`,
    );
  } else if (one !== undefined) {
    why.push(`npm kept --${one} for itself and passed on ${words} without it, so which is its value can't be known`);
  }

  // The line to type instead: the words that arrived, the values npm kept, a placeholder for each value it didn't.
  const at = received.findIndex((word) => cli.commands.includes(word));
  const command = at < 0 ? "<command>" : (received[at] as string);
  const rest = received.filter((_, i) => i !== at && !leftovers.includes(i)).map(shellWord);
  const retyped = taken.map((flag) =>
    separated.includes(flag) || unusable.includes(flag)
      ? `--${flag} ${cli.flags[flag]}`
      : `--${flag} ${shellWord(npmSetting(env, flag) as string)}`,
  );
  const end = rest.includes("--") ? rest.indexOf("--") : rest.length;
  const line = [command, ...rest.slice(0, end), ...retyped, ...rest.slice(end)];
  const script = shellWord(env.npm_lifecycle_event ?? "client");
  return `error: ${why.join("; ")}; nothing was sent. Put -- after \`npm run ${script}\` and npm passes every word on as typed:
  npm run ${script} -- ${line.join(" ")}`;
}

const list = (items: readonly string[]) =>
  items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;

/** `word` as a shell reads it back: as it is if it has nothing a shell would read differently, else in single quotes. */
function shellWord(word: string): string {
  return /^[\w.,:/@%+=-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
