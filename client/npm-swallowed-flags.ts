// `npm run client count --customer 9999` never shows the script its flag: npm
// takes every `--name` before a `--` as its own setting and passes on only the
// leftover words. Its environment says which flags it took (npm_config_customer)
// and, for `--name=value`, their values; for `--name value` only "true", the
// value being one of the leftovers. With one such flag and one leftover word the
// line as typed is certain; with more, the order they were typed in is lost, and
// guessing could store another order than the one typed, so the caller refuses.

export type Env = Record<string, string | undefined>;

/** What npm's environment shows of one of our flags: its value, "true" when the value followed as a word. */
const npmSetting = (env: Env, flag: string) => env[`npm_config_${flag.replaceAll("-", "_")}`];

export type Restored =
  | { args: string[] }
  /** Flags whose values npm separated from their names, so which word belongs to which is unknown. */
  | { lost: string[] };

/**
 * The arguments as typed, given those received and the names of our flags that
 * take a value. Outside an npm script (no npm_lifecycle_event) they are as received.
 */
export function restoreSwallowedFlags(flags: readonly string[], received: readonly string[], env: Env): Restored {
  if (!env.npm_lifecycle_event) return { args: [...received] };
  const visible = (flag: string) => received.some((arg) => arg === `--${flag}` || arg.startsWith(`--${flag}=`));
  const swallowed = flags.filter((flag) => npmSetting(env, flag) !== undefined && !visible(flag));
  const attached = swallowed.filter((flag) => npmSetting(env, flag) !== "true");
  const bare = swallowed.filter((flag) => npmSetting(env, flag) === "true");
  const args = [...received, ...attached.map((flag) => `--${flag}=${npmSetting(env, flag)}`)];
  if (bare.length === 0) return { args };
  const [flag] = bare;
  const leftovers = leftoverPositions(args);
  if (bare.length > 1 || leftovers.length !== 1 || flag === undefined) return { lost: bare };
  const at = leftovers[0] as number;
  return { args: [...args.slice(0, at), `--${flag}`, ...args.slice(at)] };
}

/** Where the words that neither name the command nor belong to a visible flag are (every flag of ours takes a value). */
function leftoverPositions(args: readonly string[]): number[] {
  const positions: number[] = [];
  for (let i = 1; i < args.length; i++) {
    const word = args[i] as string;
    if (word === "--") break;
    if (word.startsWith("-")) {
      if (!word.includes("=")) i++;
    } else positions.push(i);
  }
  return positions;
}
