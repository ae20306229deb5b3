import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './host.js';

export interface TestPki {
  dir: string;
  ca: string;
  /** Certificate and key of each named host. */
  host(name: string): { cert: string; key: string };
  dispose(): Promise<void>;
}

async function openssl(args: string[]): Promise<void> {
  const r = await run('openssl', args, { timeoutMs: 30_000 });
  if (r.rc !== 0) throw new Error(`openssl ${args[0]} failed (${r.rc}): ${r.stderr}`);
}

/** A throwaway CA and one certificate per name (CN and DNS name = the name, IP 127.0.0.1). */
export async function makePki(names: string[], extraName?: string): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'vlt-pki-'));
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca-key.pem');
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', caKey, '-out', ca, '-days', '2', '-subj', '/CN=virt-lvmlockd test CA']);
  for (const name of extraName ? [...names, extraName] : names) {
    const key = join(dir, `${name}-key.pem`);
    const csr = join(dir, `${name}.csr`);
    const ext = join(dir, `${name}.ext`);
    await writeFile(ext, `subjectAltName=DNS:${name},IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n`);
    await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
    await openssl(['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', join(dir, `${name}.pem`), '-days', '2', '-extfile', ext]);
  }
  return {
    dir,
    ca,
    host: (name) => ({ cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) }),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A loopback port free right now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
