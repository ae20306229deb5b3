import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../log/logger.js';
import { HOLDING_KIND, PEER_MESSAGE_KINDS, type HoldingAnswer, type HoldingQuery, type PeerAnswer, type PeerMessage, type PeerMessageKind, parseHoldingQuery, parsePeerMessage } from './messages.js';
import type { PeerHost } from '../config/types.js';
import { certificateIdentity, peerOfCertificate, type TlsMaterial } from './tls.js';

export type PeerHandler = (kind: PeerMessageKind, message: PeerMessage, peer: string) => Promise<PeerAnswer>;
/** Answers the `holding` query from the lock table; it must not call LVM (the asker waits at most a second). */
export type HoldingHandler = (query: HoldingQuery, peer: string) => HoldingAnswer;

const MAX_BODY = 256 * 1024;
/** A cluster has a handful of peers, each with a few sockets; more is a flood, not a cluster. */
export const MAX_PEER_CONNECTIONS = 64;
/** A peer completes a handshake in milliseconds; a half-open one must not hold a socket for long. */
export const HANDSHAKE_TIMEOUT_MS = 5000;

/**
 * Serves the other daemons: HTTPS with mutual TLS. A client without a certificate from the CA
 * never gets past the handshake; a certificate whose name is not allowed gets a refusal.
 */
export class PeerServer {
  private server: Server | undefined;

  constructor(
    private readonly tls: TlsMaterial,
    private readonly allowed: string[],
    /** The configured peers, to know a certificate that names its host only by address. */
    private readonly hosts: readonly PeerHost[],
    private readonly handler: PeerHandler,
    private readonly logger: Logger,
    /** Without it, the `holding` query is unknown here (404), as on a daemon that predates it. */
    private readonly holding?: HoldingHandler,
  ) {}

  async start(listen: string): Promise<void> {
    const m = /^(?:\[(.+)\]|([^:]+)):(\d+)$/.exec(listen);
    if (!m) throw new Error(`peers.listen: ${listen} is not address:port`);
    const host = m[1] ?? m[2];
    const port = Number(m[3]);
    const server = createServer(
      {
        ca: this.tls.ca,
        cert: this.tls.cert,
        key: this.tls.key,
        requestCert: true,
        // Checked in refuseUnverified instead: Node's own refusal drops the socket without
        // saying why, and "unsupported certificate purpose" is the one an admin needs to read.
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
        handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      },
      (req, res) => void this.serve(req, res),
    );
    server.maxConnections = MAX_PEER_CONNECTIONS;
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.on('tlsClientError', (err) => this.logger.warning(`peer TLS handshake refused: ${err.message}`));
    // First listener, so an unverified socket is gone before the HTTP parser reads anything.
    server.prependListener('secureConnection', (socket: TLSSocket) => this.refuseUnverified(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`cannot listen for peers on ${listen}: ${err.message}`)));
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    this.logger.info(`serving peers on ${listen}, accepting ${this.allowed.join(', ') || 'nobody'}`);
  }

  private refuseUnverified(socket: TLSSocket): void {
    if (socket.authorized) return;
    const code = String(socket.authorizationError ?? 'no certificate');
    const from = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.logger.warning(`peer TLS handshake refused: client ${from}: ${describeVerifyError(code)}`);
    socket.destroy();
  }

  get port(): number | undefined {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address.port : undefined;
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (status: number, answer: PeerAnswer | HoldingAnswer | { error: string }) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    };
    // Never reached by an unverified socket (refuseUnverified); checked again since it is the gate.
    if (!(req.socket as TLSSocket).authorized) {
      req.socket.destroy();
      return;
    }
    const identity = certificateIdentity((req.socket as TLSSocket).getPeerCertificate());
    const peer = peerOfCertificate(identity, this.hosts, this.allowed);
    if (!peer) {
      const shown = [...identity.names, ...identity.addresses].join('/') || '(none)';
      this.logger.warning(`peer request from certificate ${shown} refused: not in peers.allow, and no allowed peer's URL has its address`);
      reply(403, { error: `certificate name ${shown} is not allowed (peers.allow), and no allowed peer's URL has its address` });
      return;
    }
    const path = /^\/v1\/([a-z-]+)$/.exec(req.url ?? '')?.[1];
    if (req.method === 'POST' && path === HOLDING_KIND && this.holding) {
      await this.serveHolding(req, peer, this.holding, reply);
      return;
    }
    const kind = path as PeerMessageKind | undefined;
    if (req.method !== 'POST' || !kind || !PEER_MESSAGE_KINDS.includes(kind)) {
      reply(404, { error: `no such peer request: ${req.method} ${req.url}` });
      return;
    }
    let message: PeerMessage;
    try {
      message = parsePeerMessage(JSON.parse(await readBody(req)));
    } catch (err) {
      reply(400, { error: `bad ${kind} request: ${(err as Error).message}` });
      return;
    }
    try {
      const answer = await this.handler(kind, message, peer);
      const status = answer.result === 'refused' ? 409 : answer.result === 'not-held' ? 404 : 200;
      reply(status, answer);
    } catch (err) {
      this.logger.error(`peer ${peer}: ${kind} of ${message.domain} failed: ${(err as Error).message}`);
      reply(500, { error: (err as Error).message });
    }
  }

  private async serveHolding(req: IncomingMessage, peer: string, holding: HoldingHandler, reply: (status: number, answer: HoldingAnswer | { error: string }) => void): Promise<void> {
    let query: HoldingQuery;
    try {
      query = parseHoldingQuery(JSON.parse(await readBody(req)));
    } catch (err) {
      reply(400, { error: `bad ${HOLDING_KIND} request: ${(err as Error).message}` });
      return;
    }
    try {
      reply(200, holding(query, peer));
    } catch (err) {
      this.logger.error(`peer ${peer}: ${HOLDING_KIND} query failed: ${(err as Error).message}`);
      reply(500, { error: (err as Error).message });
    }
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error(`the body is larger than ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** OpenSSL's verify codes, as an admin would fix them. */
function describeVerifyError(code: string): string {
  switch (code) {
    case 'INVALID_PURPOSE':
      return 'unsupported certificate purpose: its certificate is not for TLS client authentication (no clientAuth extended key usage); use the client certificate (peers.tls.client_cert), not the server one';
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return `its certificate is not signed by the CA of peers.tls.ca (${code})`;
    case 'CERT_HAS_EXPIRED':
      return 'its certificate has expired';
    case 'CERT_NOT_YET_VALID':
      return 'its certificate is not valid yet';
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'no certificate':
      return 'it presented no certificate';
    default:
      return `its certificate does not verify (${code})`;
  }
}

