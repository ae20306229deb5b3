import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerCertificate } from 'node:tls';
import { canonicalIp, certificateIdentity, peerOfCertificate } from '../../src/peers/tls.js';
import { serverIdentityOptions } from '../../src/peers/client.js';

function cert(cn: string, san?: string): PeerCertificate {
  return { subject: { CN: cn }, subjectaltname: san } as unknown as PeerCertificate;
}

const HOSTS = [
  { name: 'hv2', url: 'https://192.0.2.2:16515' },
  { name: 'hv3', url: 'https://[2001:db8::3]:16515' },
  { name: 'hv4', url: 'https://hv4.example.org:16515' },
];

describe('certificate identity', () => {
  test('names come from CN and DNS SANs, addresses from IP SANs (as Node spells them) and a CN that is an address', () => {
    assert.deepEqual(certificateIdentity(cert('hv2', 'DNS:hv2.example.org, IP Address:192.0.2.2, IP Address:2001:DB8:0:0:0:0:0:3')), {
      names: ['hv2', 'hv2.example.org'],
      dnsSan: true,
      addresses: ['192.0.2.2', '2001:db8::3'],
    });
    assert.deepEqual(certificateIdentity(cert('192.0.2.7')), { names: [], dnsSan: false, addresses: ['192.0.2.7'] });
    assert.deepEqual(certificateIdentity(undefined), { names: [], dnsSan: false, addresses: [] });
  });

  test('canonicalIp spells an address one way and refuses names', () => {
    assert.equal(canonicalIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
    assert.equal(canonicalIp('[::1]'), '::1');
    assert.equal(canonicalIp('192.0.2.2'), '192.0.2.2');
    assert.equal(canonicalIp('hv2'), undefined);
  });
});

describe('peerOfCertificate', () => {
  const all = HOSTS.map((h) => h.name);
  test('a certificate name that is allowed wins', () => {
    assert.equal(peerOfCertificate({ names: ['hv4'], dnsSan: true, addresses: ['192.0.2.2'] }, HOSTS, all), 'hv4');
  });

  test('a certificate with only an address is the peer whose URL has that address, IPv4 or IPv6', () => {
    assert.equal(peerOfCertificate({ names: ['client2'], dnsSan: false, addresses: ['192.0.2.2'] }, HOSTS, all), 'hv2');
    assert.equal(peerOfCertificate({ names: [], dnsSan: false, addresses: ['2001:db8::3'] }, HOSTS, all), 'hv3');
  });

  test('an address of a peer that is not allowed, or of no peer, maps to nobody', () => {
    assert.equal(peerOfCertificate({ names: [], dnsSan: false, addresses: ['192.0.2.2'] }, HOSTS, ['hv3']), undefined);
    assert.equal(peerOfCertificate({ names: ['stranger'], dnsSan: false, addresses: ['192.0.2.99'] }, HOSTS, all), undefined);
  });

  test('a certificate with a DNS name is known by its names only, even if it also carries a peer address', () => {
    assert.equal(peerOfCertificate({ names: ['stranger'], dnsSan: true, addresses: ['192.0.2.2'] }, HOSTS, all), undefined);
  });
});

describe('serverIdentityOptions', () => {
  test('an address is never sent as SNI and is checked against the IP SANs', () => {
    const options = serverIdentityOptions('https://192.0.2.2:16515');
    assert.equal(options.servername, '');
    assert.equal(options.checkServerIdentity('ignored', cert('hv2', 'IP Address:192.0.2.2')), undefined);
    assert.match(String(options.checkServerIdentity('ignored', cert('hv2', 'DNS:hv2, IP Address:192.0.2.3'))), /IP: 192\.0\.2\.2 is not in the cert's list/);
  });

  test('an IPv6 address loses its brackets; a host name goes out as SNI and must be a DNS SAN', () => {
    assert.equal(serverIdentityOptions('https://[2001:db8::3]:1').servername, '');
    assert.equal(serverIdentityOptions('https://[2001:db8::3]:1').checkServerIdentity('x', cert('a', 'IP Address:2001:DB8:0:0:0:0:0:3')), undefined);
    const named = serverIdentityOptions('https://hv4.example.org:1');
    assert.equal(named.servername, 'hv4.example.org');
    assert.equal(named.checkServerIdentity('x', cert('hv4', 'DNS:hv4.example.org')), undefined);
    assert.ok(named.checkServerIdentity('x', cert('hv5', 'DNS:hv5.example.org')) instanceof Error);
  });
});
