// What the package promises about Node 18 (Debian 12's nodejs), checked on any Node version:
// the peer client's address check does not rely on Node's own, which refuses IPv6 on Node 18.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PeerCertificate } from 'node:tls';
import { serverIdentityOptions } from '../../src/peers/client.js';
import { checkAddressIdentity, ipAddressSans } from '../../src/peers/tls.js';

function cert(cn: string, subjectaltname: string | undefined): PeerCertificate {
  return { subject: { CN: cn }, subjectaltname } as unknown as PeerCertificate;
}

describe('ipAddressSans', () => {
  test('IPv6 SANs as OpenSSL prints them come out in the spelling a URL gives; DNS names are left out', () => {
    assert.deepEqual(ipAddressSans(cert('a', 'DNS:hv2, IP Address:2001:DB8:0:0:0:0:0:3, IP Address:192.0.2.2')), ['2001:db8::3', '192.0.2.2']);
  });

  test('a quoted DNS name that holds the text of an address entry yields no address', () => {
    assert.deepEqual(ipAddressSans(cert('a', 'DNS:"x, IP Address:192.0.2.2", IP Address:192.0.2.9')), ['192.0.2.9']);
  });

  test('a SAN list that cannot be read yields no address, and no SAN list none', () => {
    assert.deepEqual(ipAddressSans(cert('a', 'IP Address:192.0.2.2,IP Address:192.0.2.3')), []);
    assert.deepEqual(ipAddressSans(cert('a', undefined)), []);
  });
});

describe('checkAddressIdentity', () => {
  test('an IPv6 address matches its SAN whatever the spelling on either side', () => {
    assert.equal(checkAddressIdentity('2001:db8::3', cert('a', 'IP Address:2001:DB8:0:0:0:0:0:3')), undefined);
    assert.equal(checkAddressIdentity('2001:DB8:0::3', cert('a', 'IP Address:2001:db8::3')), undefined);
  });

  test('an address only in the CN is refused with the form and code of Node\'s own error', () => {
    const err = checkAddressIdentity('192.0.2.2', cert('192.0.2.2', 'DNS:hv2, IP Address:192.0.2.3')) as Error & { code?: string };
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
    assert.match(err.message, /IP: 192\.0\.2\.2 is not in the cert's list: 192\.0\.2\.3$/);
  });

  test('the client uses it for an IPv6 peer URL (Node 18 refused every certificate there)', () => {
    const options = serverIdentityOptions('https://[2001:db8::3]:16515');
    assert.equal(options.checkServerIdentity('', cert('a', 'IP Address:2001:DB8:0:0:0:0:0:3')), undefined);
    assert.ok(options.checkServerIdentity('', cert('a', 'IP Address:2001:DB8:0:0:0:0:0:4')) instanceof Error);
  });
});
