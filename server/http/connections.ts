// The node:http server underneath Fastify, and what a framework doesn't do
// for us: bind the port before anything else starts, bound how many requests
// one connection has in flight, answer a request node:http can't parse (a URL
// or headers over the limit) before closing, and drain on shutdown.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Config } from "../config.ts";
import { headersForStatus } from "./protocol.ts";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const inFlight = Symbol("inFlight");
const awaitingDrain = Symbol("awaitingDrain");
/** A connection, with the responses it has in flight (oldest first; more than one only when pipelining). */
type Tracked = Socket & { [inFlight]?: ServerResponse[]; [awaitingDrain]?: boolean };

/** Whether to stop reading a connection: too many of its requests in flight, or its client isn't reading the answers. */
const mustWait = (socket: Tracked, max: number) => (socket[inFlight]?.length ?? 0) >= max || socket.writableNeedDrain;

const maxEarly = 1000;

/** The request line and headers together, in bytes: node:http refuses a request past it (HPE_HEADER_OVERFLOW). */
export const maxHeaderBytes = 16 * 1024;

/**
 * How long a refused connection's input is still read (and dropped) after the
 * refusal went out. Closed with its request unread, a connection is reset by
 * the kernel, and a client still sending its request gets ECONNRESET or EPIPE
 * and never reads the answer (the "lingering close" of other servers).
 */
const lingerMs = 2000;
const refused = Symbol("refused");

type ClientError = NodeJS.ErrnoException & { rawPacket?: Buffer };

/**
 * What to answer a request node:http refused while reading it: a status, its
 * reason, the detail; undefined when there is no one to answer (a reset).
 */
function refusalOf(error: ClientError): [number, string, string] | undefined {
  switch (error.code) {
    case "ECONNRESET":
      return undefined;
    case "HPE_HEADER_OVERFLOW":
      return overflowed(error.rawPacket) === "request line"
        ? [414, "URI Too Long", `URI Too Long: the request line is longer than ${maxHeaderBytes} bytes`]
        : [
            431,
            "Request Header Fields Too Large",
            `Request Header Fields Too Large: the request line and headers are longer than ${maxHeaderBytes} bytes`,
          ];
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return [413, "Payload Too Large", "Payload Too Large: a chunk extension is too long"];
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return [408, "Request Timeout", "Request Timeout: the request took too long to arrive"];
    default:
      return [400, "Bad Request", "Bad Request: not a valid HTTP/1.1 request"];
  }
}

/**
 * Which part of a request went over maxHeaderBytes, from the packet being read
 * when it did (node:http says no more). A packet that starts the request and
 * whose first line end is past the limit, or one with no line end at all (the
 * overflowing line began earlier and is still going: a URL, in practice), is
 * the request line's; otherwise the headers'.
 */
function overflowed(packet: Buffer | undefined): "request line" | "headers" {
  if (packet === undefined) return "headers";
  const lineEnd = packet.indexOf("\r\n");
  if (lineEnd === -1) return "request line";
  const startsRequest = /^[A-Z]+ \S/.test(packet.subarray(0, 32).toString("latin1"));
  return startsRequest && lineEnd >= maxHeaderBytes ? "request line" : "headers";
}

function unavailable(res: ServerResponse): void {
  const body = JSON.stringify({ detail: "The server is starting or stopping; try again shortly." });
  res.writeHead(503, { "content-type": "application/json", connection: "close", ...headersForStatus(503) }).end(body);
}

export interface ListenerOptions {
  port: number;
  host: string;
  limits: Config["http"];
  /** A pipelining client gets at most this many requests answered at once; its socket isn't read meanwhile. */
  maxInFlightPerConnection?: number;
}

export class Listener {
  private handler: Handler | undefined;
  /** Requests that arrived before the app was ready (bounded by the listen backlog in practice). */
  private readonly early: [IncomingMessage, ServerResponse][] = [];
  /**
   * Open connections, each with its responses in flight. Not a Set of
   * responses: one added to and deleted from per request drove V8 into
   * promoting every request's objects to the old generation (most likely as
   * V8 links each outgrown hash table to its successor, so one promoted dead
   * table keeps the next ones and their entries alive), which cost cached hits
   * a fifth of their throughput. Connections come and go far less often, and
   * a connection's array holds only what it has in flight.
   */
  private readonly sockets = new Set<Tracked>();
  /** Connections refused while reading their request, read until their client is done (bounded by lingerMs). */
  private readonly lingering = new Set<Duplex>();
  private closing = false;
  private readonly maxInFlight: number;

  private constructor(
    readonly server: Server,
    options: ListenerOptions,
  ) {
    this.maxInFlight = options.maxInFlightPerConnection ?? 16;
    server.on("request", (req, res) => this.accept(req, res));
    // Fastify adds a handler of its own, told to do nothing (server.ts): this one answers.
    server.on("clientError", (error: ClientError, socket: Duplex) => this.refuse(error, socket));
  }

  /** Binds the port, and nothing else: a start that fails here has touched nothing shared. */
  static async listen(options: ListenerOptions): Promise<Listener> {
    const { limits } = options;
    const server = createServer({
      // A client that trickles its headers or body (slowloris) is cut off; idle checks run every second.
      headersTimeout: limits.headersTimeoutSeconds * 1000,
      requestTimeout: limits.requestTimeoutSeconds * 1000,
      connectionsCheckingInterval: 1000,
      maxHeaderSize: maxHeaderBytes,
    });
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    return new Listener(server, options);
  }

  get address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** Starts answering, with the requests that waited for it first. */
  serve(handler: Handler): void {
    this.handler = handler;
    for (const [req, res] of this.early.splice(0)) this.accept(req, res);
  }

  private accept(req: IncomingMessage, res: ServerResponse): void {
    if (!this.handler) {
      if (this.early.length < maxEarly) this.early.push([req, res]);
      else unavailable(res);
      return;
    }
    const socket = req.socket as Tracked;
    if (this.closing) res.setHeader("connection", "close");
    let responses = socket[inFlight];
    if (responses === undefined) {
      responses = socket[inFlight] = [];
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      // node:http resumes a socket whenever a request ends (its own backpressure only knows synchronous
      // handlers); a socket that must wait is paused again at once, before anything more is read.
      socket.on("resume", () => {
        if (mustWait(socket, this.maxInFlight)) socket.pause();
      });
    }
    responses.push(res);
    // Async handlers defeat node's own pipelining backpressure: stop reading until answers go out.
    if (mustWait(socket, this.maxInFlight)) socket.pause();
    res.once("close", () => this.finished(socket, res));
    this.handler(req, res);
  }

  private finished(socket: Tracked, res: ServerResponse): void {
    const responses = socket[inFlight] ?? [];
    const at = responses.indexOf(res);
    if (at !== -1) responses.splice(at, 1);
    // Draining: a connection whose response began before (a stream) said keep-alive; once idle, it goes.
    if (this.closing) setImmediate(() => this.server.closeIdleConnections());
    if (socket.isPaused()) this.resumeOnceDrained(socket);
  }

  /**
   * Answers a request node:http couldn't read (a URL or headers over the
   * limit, a malformed request, a timeout) with its status and a {"detail"}
   * body, then closes: at once for a timeout (the client has had its time),
   * else once the client has sent the rest of its request, which is read and
   * dropped, for at most lingerMs.
   */
  private refuse(error: ClientError, socket: Duplex & { [refused]?: boolean }): void {
    // node:http reports the error again for every later chunk it reads of this connection: dropped.
    if (socket[refused]) return;
    socket[refused] = true;
    const refusal = refusalOf(error);
    // An answer that has begun on this connection can't be followed by another.
    const answering = (socket as Tracked)[inFlight]?.some((res) => res.headersSent) ?? false;
    if (refusal === undefined || answering || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, reason, detail] = refusal;
    const body = JSON.stringify({ detail });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
    if (error.code === "ERR_HTTP_REQUEST_TIMEOUT") {
      socket.destroy();
      return;
    }
    this.lingering.add(socket);
    const timer = setTimeout(() => socket.destroy(), lingerMs);
    socket.once("end", () => socket.destroy());
    socket.once("close", () => {
      clearTimeout(timer);
      this.lingering.delete(socket);
    });
  }

  /** A client that doesn't read its answers isn't read either. */
  private resumeOnceDrained(socket: Tracked): void {
    if (socket.destroyed || socket[awaitingDrain]) return;
    if (socket.writableNeedDrain) {
      socket[awaitingDrain] = true;
      socket.once("drain", () => {
        socket[awaitingDrain] = false;
        this.resumeOnceDrained(socket);
      });
    } else if (!mustWait(socket, this.maxInFlight)) socket.resume();
  }

  /**
   * Stops accepting; every response from now on says Connection: close, idle
   * connections close at once, in-flight requests finish; resolves when the
   * last connection is gone, forcing them closed after `graceMs`.
   */
  async close(graceMs: number): Promise<void> {
    if (!this.server.listening) return;
    this.closing = true;
    for (const socket of this.sockets) {
      for (const res of socket[inFlight] ?? []) if (!res.headersSent) res.setHeader("connection", "close");
    }
    for (const [, res] of this.early.splice(0)) unavailable(res);
    for (const socket of this.lingering) socket.destroy();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const force = setTimeout(() => this.server.closeAllConnections(), graceMs).unref();
    await closed;
    clearTimeout(force);
  }
}
