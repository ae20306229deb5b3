/**
 * The peer client keeps connections alive between requests. A kept connection the peer drops
 * just as the next request leaves on it (its daemon restarted, or its keep-alive timer ran out)
 * fails with a reset before the peer read anything: the request must go again on a new
 * connection instead of failing a migration handoff.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { readFile } from 'node:fs/promises';
import { parseConfig } from '../../src/config/index.js';
import { PeerClient } from '../../src/peers/client.js';
import { loadClientTls } from '../../src/peers/tls.js';
import { makePki, type TestPki } from '../harness/pki.js';

const UUID = '7e570000-0000-4000-8000-000000000001';
let pki: TestPki;
before(async () => {
  pki = await makePki(['hv1', 'hv2']);
});
after(async () => {
  await pki?.dispose();
});

test('a request on a kept-alive connection the peer resets before reading it is sent again on a new one', async () => {
  const server: Server = createServer({
    ca: await readFile(pki.ca),
    cert: await readFile(pki.host('hv1').cert),
    key: await readFile(pki.host('hv1').key),
    requestCert: true,
  });
  const served: number[] = [];
  let connections = 0;
  server.on('secureConnection', () => connections++);
  server.on('request', (req, res) => {
    const socket = req.socket as typeof req.socket & { served?: number };
    socket.served = (socket.served ?? 0) + 1;
    // The second request on one connection meets a peer that drops it unread.
    if (socket.served === 2) {
      socket.destroy();
      return;
    }
    served.push(connections);
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ result: 'noted', detail: 'ok' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const tls = parseConfig(`peers:\n  tls: ${pki.tlsYaml('hv2')}\n`, 'test.yaml').peers.tls;
  const client = new PeerClient(await loadClientTls(tls), [{ name: 'hv1', url: `https://127.0.0.1:${port}` }], () => 3000);
  try {
    const first = await client.send(client.hosts[0]!, 'released', { domain: UUID, lvs: ['vg0/lv1'] });
    assert.equal(first.ok, true, first.error);
    const second = await client.send(client.hosts[0]!, 'released', { domain: UUID, lvs: ['vg0/lv1'] });
    assert.equal(second.ok, true, `the request on the dropped connection failed: ${second.error}`);
    assert.equal(connections, 2, 'the second request went out again on a new connection');
    assert.deepEqual(served, [1, 2]);
  } finally {
    client.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
