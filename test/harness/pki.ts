/**
 * Throwaway PKIs for the peer channel, made with the openssl command line, in libvirt's layout:
 * each host has a server pair whose certificate carries only serverAuth (libvirt's server
 * template: tls_www_server, signing_key, encryption_key) and a client pair whose certificate
 * carries only clientAuth (its client template: tls_www_client, ...). The CA is made from its own
 * config file, so the machine's openssl.cnf cannot decide which extensions it gets.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertPair {
  cert: string;
  key: string;
}

export interface HostSpec {
  /** File name stem, and the CN unless `cn` is given. */
  name: string;
  cn?: string;
  /** subjectAltName entries like DNS:hv1 or IP:127.0.0.1; none gives a certificate without SAN. */
  san: string[];
}

export interface TestPki {
  dir: string;
  ca: string;
  /** The server pair of a host (serverAuth only): what it listens with. */
  host(name: string): CertPair;
  /** The client pair of a host (clientAuth only): what its requests present. */
  client(name: string): CertPair;
  /** The peers.tls section for a host, in YAML flow style. */
  tlsYaml(name: string): string;
  dispose(): Promise<void>;
}

const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function openssl(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { timeout: 30_000, killSignal: 'SIGKILL' }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`openssl ${args[0]} failed: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}

/** The usages libvirt's certtool templates give a server and a client certificate. */
const USAGES = {
  server: ['keyUsage = critical,digitalSignature,keyEncipherment', 'extendedKeyUsage = serverAuth'],
  client: ['keyUsage = critical,digitalSignature,keyEncipherment', 'extendedKeyUsage = clientAuth'],
} as const;

async function issue(dir: string, ca: string, caKey: string, serial: number, stem: string, spec: HostSpec, role: keyof typeof USAGES): Promise<CertPair> {
  const base = join(dir, stem);
  const config = `${base}.cnf`;
  await writeFile(
    config,
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      `CN = ${spec.cn ?? spec.name}`,
      '[ext]',
      'basicConstraints = critical,CA:FALSE',
      ...USAGES[role],
      ...(spec.san.length ? [`subjectAltName = ${spec.san.join(',')}`] : []),
      '',
    ].join('\n'),
  );
  await openssl(['req', '-new', ...P256, '-keyout', `${base}-key.pem`, '-out', `${base}.csr`, '-config', config]);
  await openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', ca, '-CAkey', caKey, '-set_serial', String(serial), '-days', '2', '-out', `${base}.pem`, '-extfile', config, '-extensions', 'ext']);
  return { cert: `${base}.pem`, key: `${base}-key.pem` };
}

/**
 * A CA and, per host, a server and a client pair. A plain name gets CN and DNS SAN = the name
 * and IP SAN 127.0.0.1.
 */
export async function makePki(hosts: (string | HostSpec)[], extraName?: string): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'vlt-pki-'));
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca-key.pem');
  const caConfig = join(dir, 'ca.cnf');
  await writeFile(
    caConfig,
    ['[req]', 'distinguished_name = dn', 'x509_extensions = ca_ext', 'prompt = no', '[dn]', 'CN = virt-lvmlockd test CA', '[ca_ext]', 'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,keyCertSign,cRLSign', 'subjectKeyIdentifier = hash', ''].join('\n'),
  );
  await openssl(['req', '-x509', ...P256, '-keyout', caKey, '-out', ca, '-days', '2', '-config', caConfig]);
  const specs = (extraName ? [...hosts, extraName] : hosts).map((h): HostSpec => (typeof h === 'string' ? { name: h, san: [`DNS:${h}`, 'IP:127.0.0.1'] } : h));
  const servers = new Map<string, CertPair>();
  const clients = new Map<string, CertPair>();
  let serial = 2;
  for (const spec of specs) {
    servers.set(spec.name, await issue(dir, ca, caKey, serial++, `${spec.name}-server`, spec, 'server'));
    clients.set(spec.name, await issue(dir, ca, caKey, serial++, `${spec.name}-client`, spec, 'client'));
  }
  const pick = (pairs: Map<string, CertPair>, name: string) => {
    const pair = pairs.get(name);
    if (!pair) throw new Error(`the test PKI has no certificate for ${name}`);
    return pair;
  };
  return {
    dir,
    ca,
    host: (name) => pick(servers, name),
    client: (name) => pick(clients, name),
    tlsYaml: (name) => {
      const server = pick(servers, name);
      const client = pick(clients, name);
      return `{ ca: ${ca}, cert: ${server.cert}, key: ${server.key}, client_cert: ${client.cert}, client_key: ${client.key} }`;
    },
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
