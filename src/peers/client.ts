import { request, Agent } from 'node:https';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { PeerHost } from '../config/types.js';
import { HOLDING_KIND, parseHoldingAnswer, type HoldingQuery, type HoldingRow, type PeerAnswer, type PeerMessage, type PeerMessageKind } from './messages.js';
import { checkAddressIdentity, type TlsMaterial } from './tls.js';

export interface PeerReply {
  peer: string;
  ok: boolean;
  status?: number;
  answer?: PeerAnswer;
  /** Why the request failed, for the log and the user. */
  error?: string;
}

/** What a peer said to a `holding` query. */
export interface HoldingReply {
  peer: string;
  ok: boolean;
  rows?: HoldingRow[];
  /** The peer gave no answer within the time asked for. */
  timedOut?: boolean;
  error?: string;
}

interface PostResult {
  status?: number;
  body?: unknown;
  error?: string;
  timedOut?: boolean;
  /** Reset on a reused keep-alive connection before any answer: safe to send again. */
  staleSocket?: boolean;
}

/** Calls other daemons over HTTPS with this host's certificate; each request is bounded. */
export class PeerClient {
  private readonly agent: Agent;

  constructor(
    tls: TlsMaterial,
    readonly hosts: PeerHost[],
    private readonly timeoutMs: () => number,
  ) {
    this.agent = new Agent({ ca: tls.ca, cert: tls.cert, key: tls.key, keepAlive: true, maxSockets: 8, minVersion: 'TLSv1.2' });
  }

  byHostId(hostId: number): PeerHost | undefined {
    return this.hosts.find((h) => h.hostId === hostId);
  }

  byName(name: string): PeerHost | undefined {
    return this.hosts.find((h) => h.name === name);
  }

  async send(peer: PeerHost, kind: PeerMessageKind, message: PeerMessage): Promise<PeerReply> {
    const r = await this.post(peer, kind, message, this.timeoutMs());
    const parsed = r.body as (PeerAnswer & { error?: string }) | undefined;
    if (r.status === undefined) return { peer: peer.name, ok: false, error: r.error };
    const ok = r.status === 200;
    return {
      peer: peer.name,
      ok,
      status: r.status,
      answer: parsed?.result ? parsed : undefined,
      error: ok ? undefined : (parsed?.detail ?? parsed?.error ?? `HTTP ${r.status}`),
    };
  }

  /**
   * Asks a peer what uses these LVs on its side (the `holding` query), within `timeoutMs`: a
   * refusal waits for this answer, so it has a budget of its own, shorter than other requests'.
   */
  async holding(peer: PeerHost, lvs: string[], timeoutMs: number): Promise<HoldingReply> {
    const query: HoldingQuery = { lvs };
    const r = await this.post(peer, HOLDING_KIND, query, timeoutMs);
    if (r.status === undefined) return { peer: peer.name, ok: false, timedOut: r.timedOut, error: r.error };
    const parsed = r.body as { error?: string } | undefined;
    if (r.status !== 200) return { peer: peer.name, ok: false, error: parsed?.error ?? `HTTP ${r.status}` };
    try {
      return { peer: peer.name, ok: true, rows: parseHoldingAnswer(r.body, lvs) };
    } catch (err) {
      return { peer: peer.name, ok: false, error: `unreadable answer: ${(err as Error).message}` };
    }
  }

  /** One bounded POST; resolves with the status and the parsed JSON body, or with why it failed. */
  /**
   * A kept-alive connection the peer closed while it sat idle (the peer's daemon restarted, or its
   * keep-alive timer ran out as the request left) fails with a reset before the peer read the
   * request: that request goes again once, on a new connection. Any other failure is the answer.
   */
  private async post(peer: PeerHost, path: string, message: unknown, timeoutMs: number): Promise<PostResult> {
    const started = Date.now();
    const first = await this.postOnce(peer, path, message, timeoutMs);
    if (!first.staleSocket) return first;
    return this.postOnce(peer, path, message, Math.max(1, timeoutMs - (Date.now() - started)));
  }

  private postOnce(peer: PeerHost, path: string, message: unknown, timeoutMs: number): Promise<PostResult> {
    const body = JSON.stringify(message);
    return new Promise((resolve) => {
      let timedOut = false;
      const req = request(
        `${peer.url}/v1/${path}`,
        {
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          timeout: timeoutMs,
          ...serverIdentityOptions(peer.url),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let parsed: unknown;
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              parsed = undefined;
            }
            resolve({ status: res.statusCode, body: parsed && typeof parsed === 'object' ? parsed : undefined });
          });
          res.on('error', (err) => resolve({ error: err.message, timedOut }));
        },
      );
      req.on('timeout', () => {
        timedOut = true;
        req.destroy(new Error(`no answer within ${timeoutMs} ms`));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        const stale = req.reusedSocket && !timedOut && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
        resolve({ error: err.message, timedOut, staleSocket: stale });
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * How the peer's server certificate is matched to its URL. A host name goes out as SNI and must
 * be a DNS name of the certificate. An address must not go out as SNI (TLS forbids it, and Node
 * warns), and it must be an IP address SAN of the certificate, as libvirt's server template
 * writes it (ip_address); the check is spelled out so it does not hang on how Node derives a
 * host name for a request that has no servername.
 */
export function serverIdentityOptions(url: string): { servername: string; checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined } {
  const host = new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    servername: isIP(host) === 0 ? host : '',
    checkServerIdentity: (_servername, cert) => (isIP(host) === 0 ? checkServerIdentity(host, cert) : checkAddressIdentity(host, cert)),
  };
}

