// A Server-Sent Events reader over a real HTTP connection, for tests: every
// event it parsed, and waits on the next one that matches (no sleeps).
import { request } from "node:http";

export interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
  /** A comment line (`: …`), such as a heartbeat. */
  comment?: string;
}

export interface SseStream {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** Every event so far, in order. */
  readonly events: SseEvent[];
  /** The body, when the answer wasn't a stream. */
  body(): string;
  /** Resolves with the first event from index `from` on that matches, waiting for it; rejects on timeout or end. */
  waitFor(match: (event: SseEvent) => boolean, options?: { from?: number; timeoutMs?: number }): Promise<SseEvent>;
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>;
  close(): void;
}

/** The `count` of each data event, in order. */
export const counts = (stream: SseStream): number[] =>
  stream.events
    .filter((e) => e.data !== undefined)
    .map((e) => (JSON.parse(e.data as string) as { count: number }).count);

export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: "text/event-stream", ...headers } }, (res) => {
      const events: SseEvent[] = [];
      const waiters = new Set<() => void>();
      let buffer = "";
      let raw = "";
      let done = false;
      const wake = () => {
        for (const waiter of waiters) waiter();
      };
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        raw += chunk;
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end !== -1; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event: SseEvent = {};
          for (const line of block.split("\n")) {
            if (line === "") continue;
            if (line.startsWith(":")) event.comment = line.slice(1).trim();
            else {
              const colon = line.indexOf(":");
              const field = line.slice(0, colon);
              const value = line.slice(colon + 1).replace(/^ /, "");
              if (field === "id" || field === "event" || field === "data") event[field] = value;
            }
          }
          if (Object.keys(event).length > 0) events.push(event);
        }
        wake();
      });
      const ended = new Promise<void>((resolveEnd) => {
        const finish = () => {
          done = true;
          wake();
          resolveEnd();
        };
        res.once("end", finish);
        res.once("close", finish);
        res.once("error", finish);
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        body: () => raw,
        ended,
        waitFor(match, { from = 0, timeoutMs = 10_000 } = {}) {
          return new Promise((resolveEvent, rejectEvent) => {
            const check = () => {
              const found = events.slice(from).find(match);
              if (found) finish(() => resolveEvent(found));
              else if (done) finish(() => rejectEvent(new Error(`stream ended; events: ${JSON.stringify(events)}`)));
            };
            const timer = setTimeout(
              () =>
                finish(() => rejectEvent(new Error(`no matching event in ${timeoutMs} ms: ${JSON.stringify(events)}`))),
              timeoutMs,
            );
            const finish = (settle: () => void) => {
              clearTimeout(timer);
              waiters.delete(check);
              settle();
            };
            waiters.add(check);
            check();
          });
        },
        close: () => req.destroy(),
      });
    });
    req.once("error", reject);
    req.end();
  });
}
