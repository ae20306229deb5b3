import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import type { Config } from '../config/types.js';

/** A CA and one certificate pair: what one side of the handshake presents and trusts. */
export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

type TlsFiles = Config['peers']['tls'];

async function readPart(key: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new Error(`peers.tls.${key}: cannot read ${file}: ${(err as Error).message}`);
  }
}

/**
 * The listener's material: the server pair. libvirt's server certificate template grants only
 * serverAuth, which a TLS client checks; it is never presented as a client certificate.
 */
export async function loadServerTls(files: TlsFiles): Promise<TlsMaterial> {
  const [ca, cert, key] = await Promise.all([readPart('ca', files.ca), readPart('cert', files.cert), readPart('key', files.key)]);
  return { ca, cert, key };
}

/** The material of outgoing requests: the client pair, whose certificate carries clientAuth. */
export async function loadClientTls(files: TlsFiles): Promise<TlsMaterial> {
  const [ca, cert, key] = await Promise.all([
    readPart('ca', files.ca),
    readPart('client_cert', files.clientCert),
    readPart('client_key', files.clientKey),
  ]);
  return { ca, cert, key };
}

/** What a peer certificate vouches for: names (CN, DNS SANs) and addresses (IP SANs, or a CN that is an address). */
export interface CertificateIdentity {
  /** CN and DNS SANs. */
  names: string[];
  /** Whether any of `names` is a DNS SAN: then the certificate names its host, not only an address. */
  dnsSan: boolean;
  addresses: string[];
}

/** An IP address in one spelling, so that 2001:DB8:0:0:0:0:0:1 (as Node shows a SAN) equals 2001:db8::1. */
export function canonicalIp(text: string): string | undefined {
  const bare = text.trim().replace(/^\[(.*)\]$/, '$1');
  const family = isIP(bare);
  if (family === 0) return undefined;
  return new URL(family === 6 ? `https://[${bare}]/` : `https://${bare}/`).hostname.replace(/^\[(.*)\]$/, '$1');
}

/**
 * The IP address SANs of a certificate, canonical. Node prints SANs as `TYPE:value` joined by
 * ", ", with a value that holds a comma or a quote in JSON quotes; a quoted value is never an
 * address, so a DNS name whose text looks like an address entry cannot pass for one. A SAN
 * list that cannot be read yields no address at all. Pure.
 */
export function ipAddressSans(cert: PeerCertificate): string[] {
  const text = cert.subjectaltname ?? '';
  const entry = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,"]*)(, |$)/y;
  const addresses: string[] = [];
  let at = 0;
  while (at < text.length) {
    entry.lastIndex = at;
    const m = entry.exec(text);
    if (!m) return [];
    const address = m[1] === 'IP Address' ? canonicalIp(m[2]!) : undefined;
    if (address !== undefined) addresses.push(address);
    at = entry.lastIndex;
    if (m[3] === '') break;
  }
  return addresses;
}

/**
 * Node's server identity check for a peer URL that names an address: the address must be one of
 * the certificate's IP SANs (a CN never counts). Spelled out because Node 18 takes an IPv6
 * address for a host name (its domainToASCII turns it into "") and then refuses every
 * certificate; the error has the form and code of Node's own.
 */
export function checkAddressIdentity(address: string, cert: PeerCertificate): Error | undefined {
  const ips = ipAddressSans(cert);
  const wanted = canonicalIp(address);
  if (wanted !== undefined && ips.includes(wanted)) return undefined;
  const reason = `IP: ${address} is not in the cert's list: ${ips.join(', ')}`;
  return Object.assign(new Error(`Hostname/IP does not match certificate's altnames: ${reason}`), {
    code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    reason,
    host: address,
    cert,
  });
}

export function certificateIdentity(cert: PeerCertificate | undefined): CertificateIdentity {
  const names = new Set<string>();
  const addresses = new Set<string>();
  if (!cert || !cert.subject) return { names: [], dnsSan: false, addresses: [] };
  let dnsSan = false;
  const cn = cert.subject.CN;
  for (const value of typeof cn === 'string' ? [cn] : Array.isArray(cn) ? cn : []) {
    const ip = canonicalIp(value);
    if (ip === undefined) names.add(value);
    else addresses.add(ip);
  }
  for (const part of (cert.subjectaltname ?? '').split(',')) {
    const m = /^\s*(DNS|IP Address):(.+)$/.exec(part);
    if (!m) continue;
    const value = m[2]!.trim().replace(/^"(.*)"$/, '$1');
    if (m[1] === 'DNS') {
      names.add(value);
      dnsSan = true;
    }
    else {
      const ip = canonicalIp(value);
      if (ip !== undefined) addresses.add(ip);
    }
  }
  return { names: [...names], dnsSan, addresses: [...addresses] };
}

/** The names a peer certificate vouches for: its CN and its DNS subject alternative names. */
export function certificateNames(cert: PeerCertificate | undefined): string[] {
  return certificateIdentity(cert).names;
}

/** The address of a peer URL's host, canonical, or undefined when the URL names a host by DNS. */
export function urlAddress(url: string): string | undefined {
  return canonicalIp(new URL(url).hostname);
}

/**
 * Which allowed peer a verified certificate belongs to: a name it carries, or else, for a
 * certificate that names its host only by address (no DNS SAN; libvirt's templates may give
 * just a free-form cn and ip_address), the peer whose URL has that address. A certificate with
 * DNS names is known by them alone, so a host named otherwise cannot pass for a peer by also
 * carrying its address. Pure.
 */
export function peerOfCertificate(
  identity: CertificateIdentity,
  hosts: readonly { name: string; url: string }[],
  allowed: readonly string[],
): string | undefined {
  const byName = identity.names.find((n) => allowed.includes(n));
  if (byName !== undefined || identity.dnsSan) return byName;
  const byAddress = hosts.find((h) => allowed.includes(h.name) && identity.addresses.includes(urlAddress(h.url) ?? ''));
  return byAddress?.name;
}
