import { readFile } from 'node:fs/promises';
import type { PeerCertificate } from 'node:tls';

export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** Reads the CA, certificate and key, naming the file that cannot be read. */
export async function loadTls(files: { ca: string; cert: string; key: string }): Promise<TlsMaterial> {
  const read = async (what: string, file: string) => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new Error(`peers.tls.${what}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  const [ca, cert, key] = await Promise.all([read('ca', files.ca), read('cert', files.cert), read('key', files.key)]);
  return { ca, cert, key };
}

/** The names a peer certificate vouches for: its CN and its DNS subject alternative names. */
export function certificateNames(cert: PeerCertificate | undefined): string[] {
  if (!cert || !cert.subject) return [];
  const names = new Set<string>();
  const cn = cert.subject.CN;
  if (typeof cn === 'string') names.add(cn);
  else if (Array.isArray(cn)) for (const n of cn) names.add(n);
  for (const part of (cert.subjectaltname ?? '').split(',')) {
    const m = /^\s*DNS:(.+)$/.exec(part);
    if (m) names.add(m[1].trim());
  }
  return [...names];
}
