/**
 * A throwaway CA and one certificate per test instance for the peer channel's mutual TLS, made
 * with the openssl command line at harness start.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { must } from './exec.js';

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

export interface CertificateSubject {
  /** CN and DNS SAN: the name a peer is allowed by. */
  name: string;
  /** IP SAN: the address the peer URL uses. */
  ip: string;
}

const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export async function makePeerCertificates(dir: string, subjects: CertificateSubject[]): Promise<Map<string, TlsFiles>> {
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  const caConfig = join(dir, 'ca.cnf');
  // Own config files: the machine's openssl.cnf must not decide which extensions the test CA gets.
  await writeFile(
    caConfig,
    [
      '[req]',
      'distinguished_name = dn',
      'x509_extensions = ca_ext',
      'prompt = no',
      '[dn]',
      'CN = virt-lvmlockd e2e test CA',
      '[ca_ext]',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  );
  await must('openssl', ['req', '-x509', ...P256, '-keyout', caKey, '-out', ca, '-days', '2', '-config', caConfig], { timeoutMs: 30_000 });

  const files = new Map<string, TlsFiles>();
  let serial = 2;
  for (const subject of subjects) {
    const base = join(dir, subject.name);
    const config = `${base}.cnf`;
    await writeFile(
      config,
      [
        '[req]',
        'distinguished_name = dn',
        'prompt = no',
        '[dn]',
        `CN = ${subject.name}`,
        '[ext]',
        'basicConstraints = critical,CA:FALSE',
        'keyUsage = critical,digitalSignature',
        'extendedKeyUsage = serverAuth,clientAuth',
        `subjectAltName = DNS:${subject.name},IP:${subject.ip}`,
        '',
      ].join('\n'),
    );
    await must('openssl', ['req', '-new', ...P256, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-config', config], { timeoutMs: 30_000 });
    await must(
      'openssl',
      ['x509', '-req', '-in', `${base}.csr`, '-CA', ca, '-CAkey', caKey, '-set_serial', String(serial++), '-days', '2', '-out', `${base}.pem`, '-extfile', config, '-extensions', 'ext'],
      { timeoutMs: 30_000 },
    );
    files.set(subject.name, { ca, cert: `${base}.pem`, key: `${base}.key` });
  }
  return files;
}
