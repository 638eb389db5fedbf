// A TCP proxy in front of llm-chat that a test can cut, to drop the
// browser's connections mid-stream the way a flaky network would.
import net from 'node:net';

export class CuttableProxy {
  private server: net.Server;
  private sockets = new Set<net.Socket>();
  private down = false;
  /** Request lines seen, e.g. `GET /api/v1/generations/…/events HTTP/1.1`. */
  readonly requests: string[] = [];

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(targetUrl: string): Promise<CuttableProxy> {
    const url = new URL(targetUrl);
    const proxy = new CuttableProxy({ host: url.hostname, port: Number(url.port) });
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    const address = this.server.address() as net.AddressInfo;
    return `http://127.0.0.1:${address.port}`;
  }

  private accept(client: net.Socket): void {
    if (this.down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target);
    this.sockets.add(client).add(upstream);
    // Every request line, including later requests on a kept-alive connection.
    client.on('data', (chunk) => {
      for (const match of chunk.toString('latin1').matchAll(/^(?:GET|POST|PUT|DELETE) \S+ HTTP\/1\.1/gm)) {
        this.requests.push(match[0]);
      }
    });
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  }

  /** Drops every open connection and refuses new ones until `restore()`. */
  cut(): void {
    this.down = true;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  restore(): void {
    this.down = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
