// The node:http server underneath Fastify, and what a framework doesn't do
// for us: bind the port before anything else starts, bound how many requests
// one connection has in flight, and drain on shutdown.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
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
  private closing = false;
  private readonly maxInFlight: number;

  private constructor(
    readonly server: Server,
    options: ListenerOptions,
  ) {
    this.maxInFlight = options.maxInFlightPerConnection ?? 16;
    server.on("request", (req, res) => this.accept(req, res));
  }

  /** Binds the port, and nothing else: a start that fails here has touched nothing shared. */
  static async listen(options: ListenerOptions): Promise<Listener> {
    const { limits } = options;
    const server = createServer({
      // A client that trickles its headers or body (slowloris) is cut off; idle checks run every second.
      headersTimeout: limits.headersTimeoutSeconds * 1000,
      requestTimeout: limits.requestTimeoutSeconds * 1000,
      connectionsCheckingInterval: 1000,
      maxHeaderSize: 16 * 1024,
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
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    const force = setTimeout(() => this.server.closeAllConnections(), graceMs).unref();
    await closed;
    clearTimeout(force);
  }
}
