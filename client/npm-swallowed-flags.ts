// `npm run client count --customer 9999` never shows the script its flag: npm
// takes every `--name` before a `--` as its own setting and passes on only the
// leftover words. Its environment says which flags it took (npm_config_customer)
// and, for `--name=value`, their values; for `--name value` only "true", the
// value being one of the leftovers. With one such flag and one leftover word the
// line as typed is certain. With more, the order they were typed in is lost to
// the script (npm even rewrites its own process title without the flags), but
// npm logs its argv first thing in its debug log, which it holds open while the
// script runs. Where that file can be found among an ancestor's open files
// (Linux's /proc: this run's own log, whatever other runs began in the same
// millisecond) and its argv accounts for exactly what npm passed on, that line
// is used; else guessing could store another order than the one typed, so the
// caller refuses.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

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
export function restoreSwallowedFlags(
  flags: readonly string[],
  received: readonly string[],
  env: Env,
  /** npm's argv as its debug log has it (`npmArgvOfAncestors`), if found. */
  ancestors: readonly (readonly string[])[] = [],
): Restored {
  if (!env.npm_lifecycle_event) return { args: [...received] };
  const visible = (flag: string) => received.some((arg) => arg === `--${flag}` || arg.startsWith(`--${flag}=`));
  const swallowed = flags.filter((flag) => npmSetting(env, flag) !== undefined && !visible(flag));
  const attached = swallowed.filter((flag) => npmSetting(env, flag) !== "true");
  const bare = swallowed.filter((flag) => npmSetting(env, flag) === "true");
  const args = [...received, ...attached.map((flag) => `--${flag}=${npmSetting(env, flag)}`)];
  if (bare.length === 0) return { args };
  const [flag] = bare;
  const leftovers = leftoverPositions(args);
  if (bare.length > 1 || leftovers.length !== 1 || flag === undefined) {
    const typed = typedToNpm(swallowed, received, env, ancestors);
    return typed ? { args: typed } : { lost: bare };
  }
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

/**
 * The words typed after the script's name, if one of npm's argvs (`ancestors`),
 * less the flags npm kept, is exactly what npm passed on (so nothing else of it
 * went missing, and no word is placed by guess).
 */
function typedToNpm(
  swallowed: readonly string[],
  received: readonly string[],
  env: Env,
  ancestors: readonly (readonly string[])[],
) {
  const script = env.npm_lifecycle_event;
  for (const argv of ancestors) {
    for (let at = script ? argv.indexOf(script) : -1; at >= 0; at = argv.indexOf(script ?? "", at + 1)) {
      const typed = asTyped(argv.slice(at + 1), swallowed, env);
      const passedOn = typed?.filter((word) => !swallowed.some((f) => word === `--${f}` || word.startsWith(`--${f}=`)));
      if (typed && passedOn?.length === received.length && passedOn.every((word, i) => word === received[i])) {
        return typed;
      }
    }
  }
  return undefined;
}

/**
 * npm's logged words with each flag npm kept a value for (`--net=23.10`,
 * logged as `--net 23.10`) joined to it again; undefined if the value logged
 * is not the one npm kept.
 */
function asTyped(logged: readonly string[], swallowed: readonly string[], env: Env): string[] | undefined {
  const typed: string[] = [];
  for (let i = 0; i < logged.length; i++) {
    const word = logged[i] as string;
    const flag = swallowed.find((f) => word === `--${f}`);
    const value = flag === undefined ? undefined : npmSetting(env, flag);
    if (flag === undefined || value === "true" || word.includes("=")) {
      typed.push(word);
      continue;
    }
    if (logged[i + 1] !== value) return undefined;
    typed.push(`--${flag}=${value}`);
    i++;
  }
  return typed;
}

/**
 * The argv of each npm process among this process's ancestors, as the first
 * `verbose argv` line of the debug log it holds open (Linux's /proc); none
 * where that can't be read (no /proc, `--logs-max=0`, another platform).
 */
export function npmArgvOfAncestors(maxDepth = 8): string[][] {
  const found: string[][] = [];
  let pid = process.ppid;
  for (let depth = 0; depth < maxDepth && pid > 1; depth++) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        const argv = argvLogged(`/proc/${pid}/fd/${fd}`);
        if (argv) found.push(argv);
      }
      // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    } catch {
      break;
    }
  }
  return found;
}

/** npm's argv from the debug log `link` (an open file's /proc link) leads to; undefined for any other file. */
function argvLogged(link: string): string[] | undefined {
  try {
    if (!/[\\/]_logs[\\/][^\\/]*-debug-\d+\.log$/.test(readlinkSync(link))) return undefined;
    const line = /^\d+ verbose argv (.*)$/m.exec(readFileSync(link, "utf8"))?.[1];
    return line ? [...line.matchAll(/"(?:[^"\\]|\\.)*"/g)].map(([word]) => JSON.parse(word) as string) : undefined;
  } catch {
    return undefined;
  }
}
