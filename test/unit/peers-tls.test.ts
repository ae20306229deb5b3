import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type Config } from '../../src/config/index.js';
import type { Logger } from '../../src/log/logger.js';
import { PeerClient } from '../../src/peers/client.js';
import { PeerServer } from '../../src/peers/server.js';
import { loadClientTls, loadServerTls } from '../../src/peers/tls.js';
import { makePki, type TestPki } from '../harness/pki.js';

// The wiring of src/daemon.ts: the listener presents the server pair, requests the client pair.
async function startServer(tls: Config['peers']['tls'], hosts: Config['peers']['hosts'], allowed: string[], logger: Logger): Promise<PeerServer> {
  const server = new PeerServer(await loadServerTls(tls), allowed, hosts, async (_kind, message, peer) => ({ result: 'noted', detail: `${peer} ${message.domain}` }), logger);
  await server.start('127.0.0.1:0');
  return server;
}
async function makeClient(tls: Config['peers']['tls'], hosts: Config['peers']['hosts']): Promise<PeerClient> {
  return new PeerClient(await loadClientTls(tls), hosts, () => 3000);
}

const UUID = '7e570000-0000-4000-8000-000000000001';

function quietLogger(lines: string[]): Logger {
  const log = (m: string | (() => string)) => void lines.push(typeof m === 'string' ? m : m());
  return { error: log, warning: log, notice: log, info: log, debug: log, setLevel: () => undefined, close: async () => undefined };
}

function tlsOf(pki: TestPki, name: string): Config['peers']['tls'] {
  return parseConfig(`peers:\n  tls: ${pki.tlsYaml(name)}\n`, 'test.yaml').peers.tls;
}

describe("peer TLS with libvirt's PKI layout (server cert: serverAuth only, client cert: clientAuth only)", () => {
  let pki: TestPki;
  before(async () => {
    pki = await makePki([
      'hv1',
      'hv2',
      // libvirt's templates name a host by cn and, optionally, ip_address: here only by address.
      { name: 'ip2', cn: 'client2', san: ['IP:127.0.0.1'] },
      { name: 'ip1', cn: 'server1', san: ['IP:127.0.0.1'] },
    ]);
  });
  after(async () => {
    await pki?.dispose();
  });

  test("a request from hv2's daemon to hv1's daemon completes the handshake and is answered as from hv2", async () => {
    const lines: string[] = [];
    const server = await startServer(tlsOf(pki, 'hv1'), [{ name: 'hv2', url: 'https://127.0.0.1:1' }], ['hv2'], quietLogger(lines));
    const client = await makeClient(tlsOf(pki, 'hv2'), [{ name: 'hv1', url: `https://127.0.0.1:${server.port}` }]);
    try {
      const reply = await client.send(client.hosts[0]!, 'released', { domain: UUID, lvs: ['vg0/lv1'] });
      assert.equal(reply.ok, true, `${reply.error}; server log: ${lines.join(' | ')}`);
      assert.deepEqual(reply.answer, { result: 'noted', detail: `hv2 ${UUID}` });
    } finally {
      client.close();
      await server.stop();
    }
  });

  test('a client certificate that names its host only by an IP SAN is the peer whose URL has that address', async () => {
    const lines: string[] = [];
    const hosts = [
      { name: 'hv3', url: 'https://127.0.0.3:16515' },
      { name: 'hv2', url: 'https://127.0.0.1:16515' },
    ];
    const server = await startServer(tlsOf(pki, 'hv1'), hosts, ['hv2', 'hv3'], quietLogger(lines));
    // Both pairs point at the client certificate, so the request presents it whichever pair is used.
    const ip2 = pki.client('ip2');
    const clientTls = { ...tlsOf(pki, 'ip2'), cert: ip2.cert, key: ip2.key };
    const client = await makeClient(clientTls, [{ name: 'hv1', url: `https://127.0.0.1:${server.port}` }]);
    try {
      const reply = await client.send(client.hosts[0]!, 'released', { domain: UUID, lvs: ['vg0/lv1'] });
      assert.equal(reply.ok, true, `${reply.error}; server log: ${lines.join(' | ')}`);
      assert.equal(reply.answer?.detail, `hv2 ${UUID}`);
    } finally {
      client.close();
      await server.stop();
    }
  });
});
