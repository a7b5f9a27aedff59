// Credentials must never reach a log line, an error message or a response.
// Connection strings carry them (postgres://user:password@host, ?password=),
// and errors quote connection strings (ERR_INVALID_URL's `input`), so every
// string that leaves the process passes through maskSecrets.

// scheme://user:password@ — up to the last "@" of the word, since a malformed
// URL's password may itself hold an unescaped "@" (within 512 characters, so a
// long hostile string can't make the search quadratic).
const userinfo = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:@/]*):\S{0,512}@/gi;
const passwordParameter = /([?&](?:password|pass|pwd)=)[^&\s"']*/gi;

/** The text with every password in a URL replaced by "***". */
export function maskSecrets(text: string): string {
  return text.replace(userinfo, "$1$2:***@").replace(passwordParameter, "$1***");
}

/** A copy of `value` with maskSecrets applied to every string in it (errors become plain objects). */
export function maskDeep(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return maskSecrets(value);
  if (value === null || typeof value !== "object" || depth > 8) return value;
  if (Array.isArray(value)) return value.map((item) => maskDeep(item, depth + 1));
  if (value instanceof URL) return maskSecrets(value.href);
  if (value instanceof Error) {
    const { name, message, stack, cause } = value;
    const fields = {
      type: name,
      message,
      stack,
      ...(cause === undefined ? {} : { cause }),
      ...Object.fromEntries(Object.entries(value)),
    };
    return maskDeep(fields, depth + 1);
  }
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, maskDeep(item, depth + 1)]));
}
