// DNS rebinding: a page on attacker.example whose name resolves to 127.0.0.1
// can make a browser talk to a server bound there, with Host: attacker.example.
// While bound to a loopback address, only loopback names and ALLOWED_HOSTS are served.
import { isIP } from "node:net";

export function isLoopbackAddress(address: string): boolean {
  return address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.");
}

/** Whether a Host header names this server: a loopback name or address, or one listed. */
export function allowsHost(host: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (host === undefined) return true; // HTTP/1.0 without Host: not a browser
  const name = hostName(host.toLowerCase());
  if (name === "localhost" || name.endsWith(".localhost") || allowed.has(name)) return true;
  return isIP(name) !== 0 && isLoopbackAddress(name);
}

function hostName(host: string): string {
  if (host.startsWith("[")) return host.slice(1, host.indexOf("]"));
  const colon = host.lastIndexOf(":");
  return colon === -1 ? host : host.slice(0, colon);
}
