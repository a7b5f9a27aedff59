// A TCP proxy the tests put between the service and PostgreSQL or Valkey, to
// cut, stall and restore the real connection: no mocked client anywhere.
import { connect, createServer, type Server, type Socket } from "node:net";
import { useFixture } from "./fixture.ts";

export type ProxyMode = "open" | "cut" | "stalled" | "partitioned";

export class TcpProxy {
  private mode: ProxyMode = "open";
  private readonly pairs = new Set<[Socket, Socket]>();
  private holdAfter: { marker: string; held: () => void } | undefined;
  private holding = false;
  private readonly watches = new Set<{ marker: string; seen: () => void }>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy?.accept(client, target));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (!address || typeof address === "string") throw new Error("proxy has no port");
    proxy = new TcpProxy(server, address.port);
    return proxy;
  }

  /** Same URL, through this proxy. */
  url(targetUrl: string): string {
    const url = new URL(targetUrl);
    url.hostname = "127.0.0.1";
    url.port = String(this.port);
    return url.toString();
  }

  /** Resets every open connection and every new one, as a dead server would. */
  cut(): void {
    this.mode = "cut";
    for (const [a, b] of this.pairs) {
      a.resetAndDestroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  /** Accepts connections and bytes but forwards nothing, as a hung server would. */
  stall(): void {
    this.mode = "stalled";
    for (const [a, b] of this.pairs) {
      a.pause();
      b.pause();
    }
  }

  /**
   * A partition: forwards nothing either way and closes nothing, not even when
   * one side closes (a FIN lost with everything else). The server keeps its
   * session, and anything it holds, as long as the proxy keeps the socket.
   */
  partition(): void {
    this.stall();
    this.mode = "partitioned";
  }

  /**
   * Forwards everything, until a client sends bytes containing `marker`: the
   * server still gets them, but its answers on that connection are held back
   * until restore(), as when a reply is lost after the server acted on the
   * request. Resolves once that has happened.
   */
  holdRepliesAfter(marker: string): Promise<void> {
    return new Promise((held) => {
      this.holdAfter = { marker, held };
    });
  }

  /** From now on, holds back what the servers send (clients' bytes still go through), until restore(). */
  holdReplies(): void {
    this.holding = true;
    for (const [, upstream] of this.pairs) upstream.pause();
  }

  /** Resolves once a client sends bytes containing `marker`. */
  sent(marker: string): Promise<void> {
    return new Promise((seen) => this.watches.add({ marker, seen }));
  }

  restore(): void {
    this.mode = "open";
    this.holding = false;
    this.holdAfter = undefined;
    for (const pair of this.pairs) {
      const [a, b] = pair;
      // A side closed during a partition: its close reaches the other side now.
      if (a.destroyed || b.destroyed) {
        a.destroy();
        b.destroy();
        this.pairs.delete(pair);
        continue;
      }
      a.resume();
      b.resume();
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, target: { host: string; port: number }): void {
    if (this.mode === "cut") return void client.resetAndDestroy();
    const upstream = connect(target.port, target.host);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const drop = () => {
      if (this.mode === "partitioned") return;
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.on("data", (chunk: Buffer) => {
      for (const watch of this.watches) {
        if (!chunk.includes(watch.marker)) continue;
        this.watches.delete(watch);
        watch.seen();
      }
      const hold = this.holdAfter;
      if (hold && chunk.includes(hold.marker)) {
        this.holdAfter = undefined;
        upstream.pause();
        hold.held();
      }
    });
    client.pipe(upstream);
    upstream.pipe(client);
    if (this.mode === "stalled" || this.mode === "partitioned") {
      client.pause();
      upstream.pause();
    }
    if (this.holding) upstream.pause();
  }
}

/** A proxy to the server of `url` (a PostgreSQL or Valkey URL) for the whole test file. */
export function useProxy(url: () => string, defaultPort: number): TcpProxy {
  return useFixture(
    () => {
      const target = new URL(url());
      return TcpProxy.start({ host: target.hostname, port: Number(target.port || defaultPort) });
    },
    (proxy) => proxy.close(),
  );
}
