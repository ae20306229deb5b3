/**
 * Serves the exposition over plain HTTP: GET /metrics and nothing else. A scraper's mistakes or a
 * failing collector are answered and logged here; nothing a client does reaches the daemon's work.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../log/logger.js';

export interface Exposition {
  readonly contentType: string;
  exposition(): Promise<string>;
}

/** A scraper or two; more connections than this are not a monitoring system. */
const MAX_CONNECTIONS = 16;
/** A scrape is one short request: a client that dawdles must not hold a socket. */
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** How long stop() waits for a scrape in flight before it drops the connections. */
const STOP_GRACE_MS = 2_000;

/** "192.0.2.1:9716" or "[2001:db8::1]:9716" to host and port; undefined when it is neither. */
export function parseListen(listen: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(listen);
  if (!m) return undefined;
  const port = Number(m[3]);
  return port <= 65535 ? { host: (m[1] ?? m[2])!, port } : undefined;
}

export class MetricsServer {
  private server: Server | undefined;

  constructor(
    private readonly source: Exposition,
    private readonly logger: Logger,
  ) {}

  /** Listens on `listen`; rejects with an error naming the address and the reason. */
  async start(listen: string): Promise<void> {
    const where = parseListen(listen);
    if (!where) throw new Error(`cannot serve metrics on ${JSON.stringify(listen)}: not address:port`);
    const server = createServer((req, res) => void this.serve(req, res));
    server.maxConnections = MAX_CONNECTIONS;
    server.headersTimeout = HEADERS_TIMEOUT_MS;
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    server.on('clientError', (err, socket) => {
      this.logger.debug(`metrics: bad request from a client: ${err.message}`);
      socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`cannot serve metrics on ${listen}: ${err.message}`)));
      server.listen(where.port, where.host, () => resolve());
    });
    // Once listening, a server error must not become an uncaught exception that stops the daemon.
    server.on('error', (err) => this.logger.error(`metrics server on ${listen}: ${err.message}`));
    this.server = server;
    this.logger.info(`serving metrics on http://${listen}/metrics`);
  }

  /** The port actually bound (for a listen on port 0 in tests). */
  get port(): number | undefined {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address.port : undefined;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeIdleConnections();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const grace = new Promise<void>((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref());
    await Promise.race([closed, grace]);
    server.closeAllConnections();
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') return this.reply(res, 404, 'not found: metrics are served on GET /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return this.reply(res, 405, `method ${req.method ?? '?'} not allowed: use GET /metrics\n`);
    }
    let body: string;
    try {
      body = await this.source.exposition();
    } catch (err) {
      this.logger.error(`metrics: a scrape failed: ${(err as Error).message}`);
      return this.reply(res, 500, 'the metrics could not be collected; the daemon log says why\n');
    }
    this.reply(res, 200, body, this.source.contentType, req.method === 'HEAD');
  }

  private reply(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8', headOnly = false): void {
    res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
    res.end(headOnly ? undefined : body);
  }
}
