/** The same server, another database. */
export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/**
 * The URL carrying a password, and that password: the one it has, or `planted`
 * when it has none (trust authentication ignores it), so a test that hunts
 * for the password in output always has one to hunt.
 */
export function withPassword(url: string, planted: string): { url: string; password: string } {
  const parsed = new URL(url);
  if (!parsed.password) parsed.password = planted;
  return { url: parsed.toString(), password: decodeURIComponent(parsed.password) };
}
