// `npm run client add --customer 9999 --net 23.00 --tax 2.00` never shows the
// script its flags: npm takes every `--name` before a `--` as its own setting
// (npm_config_customer=true, …) and passes on only `add 9999 23.00 2.00`. With
// more than one such flag the order they were typed in is lost, so guessing
// would write the wrong order. npm keeps what was typed in one place: the
// `verbose argv` line of its debug log (its process title, hence
// /proc/<pid>/cmdline, is rewritten to the leftovers). We read that line back,
// for the npm process that is our ancestor, and use it only if it reduces to
// exactly the arguments we were given; otherwise the caller refuses.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export type Env = Record<string, string | undefined>;

/** The value npm set for a flag it swallowed: "true" when the value followed as a separate word. */
export const npmSetting = (env: Env, flag: string) => env[`npm_config_${flag.replaceAll("-", "_")}`];

/** Flags of ours that npm took for its own settings: set in npm's env, absent from our arguments. */
export function swallowedFlags(flags: readonly string[], args: readonly string[], env: Env): string[] {
  if (!env.npm_lifecycle_event) return [];
  const visible = (flag: string) => args.some((arg) => arg === `--${flag}` || arg.startsWith(`--${flag}=`));
  return flags.filter((flag) => npmSetting(env, flag) !== undefined && !visible(flag));
}

/**
 * What npm hands a script, given the words typed after the script's name (as
 * npm logs them: `--name=value` split into `--name value`): everything after
 * `--`, and before it every word that is neither an option nor an option's value.
 */
export function passedOn(typed: readonly string[], env: Env): string[] {
  const passed: string[] = [];
  for (let i = 0; i < typed.length; i++) {
    const word = typed[i] as string;
    if (word === "--") return [...passed, ...typed.slice(i + 1)];
    if (!word.startsWith("-")) {
      passed.push(word);
      continue;
    }
    const setting = npmSetting(env, word.replace(/^-+/, ""));
    // `--name=value` logged as `--name value`: npm kept the value, the script never saw it.
    if (setting !== undefined && setting !== "true" && typed[i + 1] === setting) i++;
  }
  return passed;
}

/** The words typed after the script's name in npm's logged argv, if they reduce to `received`. */
export function typedAfterScript(npmArgv: readonly string[], script: string, received: readonly string[], env: Env) {
  const matches = npmArgv
    .map((word, i) => (word === script ? npmArgv.slice(i + 1) : undefined))
    .filter((tail): tail is string[] => tail !== undefined && sameWords(passedOn(tail, env), received));
  return matches.length === 1 ? matches[0] : undefined;
}

/** `verbose argv "run" "client" "add"` → ["run", "client", "add"] */
export function parseLoggedArgv(line: string): string[] | undefined {
  const words = line.match(/"(?:[^"\\]|\\.)*"/g);
  if (!words) return undefined;
  try {
    return words.map((word) => JSON.parse(word) as string);
  } catch {
    return undefined;
  }
}

interface NpmProcess {
  title: string;
  startedMs: number;
}

/** The words typed after `npm run <script>`, or undefined when they can't be known for sure. */
export function recoverTypedArgs(received: readonly string[], env: Env): string[] | undefined {
  const script = env.npm_lifecycle_event;
  if (!script) return undefined;
  try {
    const npm = npmAncestor();
    const logs = env.npm_config_logs_dir ?? (env.npm_config_cache && join(env.npm_config_cache, "_logs"));
    if (!npm || !logs) return undefined;
    const candidates = debugLogsNear(logs, npm.startedMs).flatMap((file) => {
      const argv = loggedArgv(readFileSync(file, "utf8"), npm.title);
      const typed = argv && typedAfterScript(argv, script, received, env);
      return typed ? [typed] : [];
    });
    // Two npm runs started together with the same leftovers but different flags: can't tell which is ours.
    const distinct = new Set(candidates.map((typed) => JSON.stringify(typed)));
    return distinct.size === 1 ? candidates[0] : undefined;
  } catch {
    return undefined;
  }
}

function sameWords(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((word, i) => word === b[i]);
}

/** The argv npm logged, if this log's process title is `title`. */
function loggedArgv(log: string, title: string): string[] | undefined {
  const head = log.slice(0, 64 * 1024).split("\n");
  const logged = (key: string) =>
    head.find((line) => new RegExp(`^\\d+ verbose ${key} `).test(line))?.replace(/^\d+ verbose \w+ /, "");
  const argv = logged("argv");
  return logged("title")?.trim() === title && argv ? parseLoggedArgv(argv) : undefined;
}

/** The nearest ancestor process whose title npm set to `npm …` (Linux /proc). */
function npmAncestor(): NpmProcess | undefined {
  const bootMs = Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1]) * 1000;
  const ticksPerSecond = 100;
  let pid = process.ppid;
  for (let depth = 0; depth < 12 && pid > 1; depth++) {
    const title = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (/^npm (run|run-script|rum|urn) /.test(`${title} `)) {
      return { title, startedMs: bootMs + (Number(fields[19]) / ticksPerSecond) * 1000 };
    }
    pid = Number(fields[1]);
  }
  return undefined;
}

/** npm's debug logs (`2026-11-26T00_40_35_850Z-debug-0.log`) begun within seconds of `startedMs`. */
function debugLogsNear(dir: string, startedMs: number): string[] {
  return readdirSync(dir)
    .filter((name) => {
      const stamp = /^(\d{4}-\d\d-\d\d)T(\d\d)_(\d\d)_(\d\d)_(\d{3})Z-debug-\d+\.log$/.exec(name);
      if (!stamp) return false;
      const [, day, h, m, s, ms] = stamp;
      const loggedMs = Date.parse(`${day}T${h}:${m}:${s}.${ms}Z`);
      return loggedMs >= startedMs - 2000 && loggedMs <= startedMs + 30_000;
    })
    .map((name) => join(dir, name));
}
