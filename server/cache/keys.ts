// Key layout, under the configured prefix and a format version (bump it when
// the entry format changes, and old entries are simply never read again):
//   <prefix>:v1:q:<procedure>:<canonical input>   a cached result
//   <prefix>:v1:t:<tag>                           a tag's current version token
//   <prefix>:v1:m:<name>                          the cache's own bookkeeping (applier.ts)
import { createHash, randomBytes } from "node:crypto";
import stringify from "safe-stable-stringify";

const formatVersion = "v1";

/** The tag every entry depends on; bumping it retires every entry at once. */
export const epochTag = "*";

// Longer inputs are hashed so keys stay short.
const maxInlineInput = 128;

export function entryKey(prefix: string, procedure: string, input: unknown): string {
  const canonical = input === undefined ? "" : (stringify(input) ?? "");
  const inline =
    canonical.length <= maxInlineInput ? canonical : `#${createHash("sha256").update(canonical).digest("base64url")}`;
  return `${prefix}:${formatVersion}:q:${procedure}:${inline}`;
}

export function tagKey(prefix: string, tag: string): string {
  return `${prefix}:${formatVersion}:t:${tag}`;
}

export function metaKey(prefix: string, name: string): string {
  return `${prefix}:${formatVersion}:m:${name}`;
}

// Version tokens only need to differ from every earlier one: a per-process
// random part and a counter do that without a syscall each.
const processId = randomBytes(6).toString("base64url");
let counter = 0;
export function newToken(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${processId}.${counter.toString(36)}`;
}
