import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePeerMessage } from '../../src/peers/messages.js';
import { certificateNames } from '../../src/peers/tls.js';
import type { PeerCertificate } from 'node:tls';

const UUID = '7e570000-0000-4000-8000-000000000001';

test('a peer message is a domain UUID and a sorted, de-duplicated LV set', () => {
  assert.deepEqual(parsePeerMessage({ domain: UUID, lvs: ['vg0/lv2', 'vg0/lv1', 'vg0/lv2'] }), { domain: UUID, lvs: ['vg0/lv1', 'vg0/lv2'] });
});

test('malformed peer messages are refused with what is wrong', () => {
  assert.throws(() => parsePeerMessage(null), /not a JSON object/);
  assert.throws(() => parsePeerMessage({ domain: 'vm1', lvs: ['vg0/lv1'] }), /"domain" must be a domain UUID/);
  assert.throws(() => parsePeerMessage({ domain: UUID, lvs: [] }), /non-empty list/);
  assert.throws(() => parsePeerMessage({ domain: UUID, lvs: ['vg0/lv1', '-aey'] }), /"-aey", which is not VG\/LV/);
  assert.throws(() => parsePeerMessage({ domain: UUID, lvs: ['vg0/../x'] }), /not VG\/LV/);
});

test('a certificate vouches for its CN and its DNS names, not its IP addresses', () => {
  const cert = { subject: { CN: 'hv2' }, subjectaltname: 'DNS:hv2.example.org, IP Address:192.0.2.2, DNS:hv2' } as unknown as PeerCertificate;
  assert.deepEqual(certificateNames(cert).sort(), ['hv2', 'hv2.example.org']);
  assert.deepEqual(certificateNames(undefined), []);
  assert.deepEqual(certificateNames({} as PeerCertificate), []);
});
