import { request, Agent } from 'node:https';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { PeerHost } from '../config/types.js';
import type { PeerAnswer, PeerMessage, PeerMessageKind } from './messages.js';
import { checkAddressIdentity, type TlsMaterial } from './tls.js';

export interface PeerReply {
  peer: string;
  ok: boolean;
  status?: number;
  answer?: PeerAnswer;
  /** Why the request failed, for the log and the user. */
  error?: string;
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

  send(peer: PeerHost, kind: PeerMessageKind, message: PeerMessage): Promise<PeerReply> {
    const body = JSON.stringify(message);
    const timeoutMs = this.timeoutMs();
    return new Promise((resolve) => {
      const req = request(
        `${peer.url}/v1/${kind}`,
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
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: (PeerAnswer & { error?: string }) | undefined;
            try {
              parsed = JSON.parse(text) as PeerAnswer & { error?: string };
            } catch {
              parsed = undefined;
            }
            const ok = res.statusCode === 200;
            resolve({
              peer: peer.name,
              ok,
              status: res.statusCode,
              answer: parsed?.result ? parsed : undefined,
              error: ok ? undefined : (parsed?.detail ?? parsed?.error ?? `HTTP ${res.statusCode}`),
            });
          });
          res.on('error', (err) => resolve({ peer: peer.name, ok: false, error: err.message }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (err) => resolve({ peer: peer.name, ok: false, error: err.message }));
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

