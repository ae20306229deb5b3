import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type Config } from '../../src/config/index.js';
import type { Logger } from '../../src/log/logger.js';
import { PeerClient } from '../../src/peers/client.js';
import { HANDSHAKE_TIMEOUT_MS, MAX_PEER_CONNECTIONS, PeerServer } from '../../src/peers/server.js';
import { connect, type Socket } from 'node:net';
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
      { name: 'ip1', cn: 'server1', san: ['IP:127.0.0.1', 'IP:::1'] },
      { name: 'elsewhere', cn: 'server9', san: ['IP:192.0.2.9'] },
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

  test('the old layout, the server certificate presented as the client certificate, fails the handshake', async () => {
    const lines: string[] = [];
    const server = await startServer(tlsOf(pki, 'hv1'), [{ name: 'hv2', url: 'https://127.0.0.1:1' }], ['hv2'], quietLogger(lines));
    const hv2 = pki.host('hv2');
    const client = await makeClient({ ...tlsOf(pki, 'hv2'), clientCert: hv2.cert, clientKey: hv2.key }, [{ name: 'hv1', url: `https://127.0.0.1:${server.port}` }]);
    try {
      const reply = await client.send(client.hosts[0]!, 'released', { domain: UUID, lvs: ['vg0/lv1'] });
      assert.equal(reply.ok, false);
      assert.equal(reply.status, undefined, 'no HTTP answer: the handshake must fail');
      assert.ok(lines.some((l) => /peer TLS handshake refused: .*unsupported certificate purpose/.test(l)), lines.join(' | '));
    } finally {
      client.close();
      await server.stop();
    }
  });

  for (const [what, host] of [
    ['IPv4', '127.0.0.1'],
    ['IPv6', '[::1]'],
  ] as const) {
    test(`a peer URL with an ${what} address verifies a server certificate that carries it only as an IP SAN`, async (t) => {
      const lines: string[] = [];
      const server = new PeerServer(await loadServerTls({ ...tlsOf(pki, 'hv1'), cert: pki.host('ip1').cert, key: pki.host('ip1').key }), ['hv2'], [], async () => ({ result: 'noted', detail: 'ok' }), quietLogger(lines));
      try {
        await server.start(`${host}:0`);
      } catch (err) {
        if (host.startsWith('[')) return t.skip(`no IPv6 loopback here: ${(err as Error).message}`);
        throw err;
      }
      const client = await makeClient(tlsOf(pki, 'hv2'), [{ name: 'hv1', url: `https://${host}:${server.port}` }]);
      try {
        const reply = await client.send(client.hosts[0]!, 'released', { domain: UUID, lvs: ['vg0/lv1'] });
        assert.equal(reply.ok, true, `${reply.error}; server log: ${lines.join(' | ')}`);
      } finally {
        client.close();
        await server.stop();
      }
    });
  }

  test("a server certificate for another address is refused, naming the URL's address", async () => {
    const server = new PeerServer(await loadServerTls({ ...tlsOf(pki, 'hv1'), cert: pki.host('elsewhere').cert, key: pki.host('elsewhere').key }), ['hv2'], [], async () => ({ result: 'noted', detail: 'ok' }), quietLogger([]));
    await server.start('127.0.0.1:0');
    const client = await makeClient(tlsOf(pki, 'hv2'), [{ name: 'hv1', url: `https://127.0.0.1:${server.port}` }]);
    try {
      const reply = await client.send(client.hosts[0]!, 'released', { domain: UUID, lvs: ['vg0/lv1'] });
      assert.equal(reply.ok, false);
      assert.match(reply.error ?? '', /IP: 127\.0\.0\.1 is not in the cert's list: 192\.0\.2\.9/);
    } finally {
      client.close();
      await server.stop();
    }
  });

  test(`the peer port holds at most ${MAX_PEER_CONNECTIONS} connections, and drops a silent one after the handshake timeout`, { timeout: 20_000 }, async () => {
    const server = await startServer(tlsOf(pki, 'hv1'), [], ['hv2'], quietLogger([]));
    const sockets: Socket[] = [];
    const open = () =>
      new Promise<Socket>((resolve, reject) => {
        const socket = connect(server.port!, '127.0.0.1', () => resolve(socket));
        socket.once('error', reject);
        sockets.push(socket);
      });
    const closed = (socket: Socket) => new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    try {
      const first = await open();
      const firstClosed = closed(first);
      const opened = Date.now();
      for (let i = 1; i < MAX_PEER_CONNECTIONS; i++) await open();
      const extra = await open();
      // The kernel accepts it; the server closes it at once, as over its limit.
      const extraClosedAt = await closed(extra);
      assert.ok(extraClosedAt - opened < HANDSHAKE_TIMEOUT_MS - 1000, 'the connection over the limit must be closed at once');
      const waited = (await firstClosed) - opened;
      assert.ok(waited >= HANDSHAKE_TIMEOUT_MS - 500 && waited < HANDSHAKE_TIMEOUT_MS + 3000, `a silent connection was dropped after ${waited} ms`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.stop();
    }
  });
});
