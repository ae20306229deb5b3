import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTlsServer } from 'node:https';
import { parseConfig, type Config } from '../../src/config/index.js';
import { answerHolding } from '../../src/holders/holdings.js';
import { LockTable } from '../../src/locks/table.js';
import type { Logger } from '../../src/log/logger.js';
import { PeerClient } from '../../src/peers/client.js';
import { parseHoldingAnswer, parseHoldingQuery } from '../../src/peers/messages.js';
import { PeerServer } from '../../src/peers/server.js';
import { loadClientTls, loadServerTls } from '../../src/peers/tls.js';
import { makePki, type TestPki } from '../harness/pki.js';

const DOMAIN = '7e570000-0000-4000-8000-000000000003';

function quietLogger(lines: string[]): Logger {
  const log = (m: string | (() => string)) => void lines.push(typeof m === 'string' ? m : m());
  return { error: log, warning: log, notice: log, info: log, debug: log, setLevel: () => undefined, close: async () => undefined };
}

function tlsOf(pki: TestPki, name: string): Config['peers']['tls'] {
  return parseConfig(`peers:\n  tls: ${pki.tlsYaml(name)}\n`, 'test.yaml').peers.tls;
}

function tableWithDb(): LockTable {
  const table = new LockTable();
  table.setHeld('vg0/lv3', 'ex', 1000);
  table.domains.set(DOMAIN, { uuid: DOMAIN, name: 'db', phase: 'running', since: 2000, wanted: new Map([['vg0/lv3', 'ex']]), own: new Map([['vg0/lv3', 'ex']]), aliases: new Map() });
  return table;
}

describe('the holding peer query over mutual TLS', () => {
  let pki: TestPki;
  before(async () => {
    pki = await makePki(['hv1', 'hv2'], 'stranger');
  });
  after(async () => {
    await pki?.dispose();
  });

  async function serve(withHolding: boolean, lines: string[]): Promise<PeerServer> {
    const table = tableWithDb();
    const server = new PeerServer(
      await loadServerTls(tlsOf(pki, 'hv2')),
      ['hv1'],
      [],
      async () => ({ result: 'noted', detail: 'x' }),
      quietLogger(lines),
      withHolding ? (query) => answerHolding(table, query) : undefined,
    );
    await server.start('127.0.0.1:0');
    return server;
  }

  test("hv1 asks hv2 what uses vg0/lv3 and gets hv2's lock table row", async () => {
    const lines: string[] = [];
    const server = await serve(true, lines);
    const client = new PeerClient(await loadClientTls(tlsOf(pki, 'hv1')), [{ name: 'hv2', url: `https://127.0.0.1:${server.port}`, hostId: 2 }], () => 3000);
    try {
      const reply = await client.holding(client.hosts[0]!, ['vg0/lv3'], 1000);
      assert.equal(reply.ok, true, `${reply.error}; ${lines.join(' | ')}`);
      assert.deepEqual(reply.rows, [{ lv: 'vg0/lv3', mode: 'ex', domain: { uuid: DOMAIN, name: 'db', phase: 'running', since: 2000 } }]);
    } finally {
      client.close();
      await server.stop();
    }
  });

  test('a certificate the CA signed but peers.allow does not name is refused', async () => {
    const server = await serve(true, []);
    const stranger = { ...tlsOf(pki, 'hv1'), clientCert: pki.client('stranger').cert, clientKey: pki.client('stranger').key };
    const client = new PeerClient(await loadClientTls(stranger), [{ name: 'hv2', url: `https://127.0.0.1:${server.port}` }], () => 3000);
    try {
      const reply = await client.holding(client.hosts[0]!, ['vg0/lv3'], 1000);
      assert.equal(reply.ok, false);
      assert.equal(reply.rows, undefined, 'no lock table row reaches a stranger');
      assert.match(reply.error ?? '', /certificate name stranger\b.* is not allowed/);
    } finally {
      client.close();
      await server.stop();
    }
  });

  test('a daemon without the query answers 404, which the asker reports', async () => {
    const server = await serve(false, []);
    const client = new PeerClient(await loadClientTls(tlsOf(pki, 'hv1')), [{ name: 'hv2', url: `https://127.0.0.1:${server.port}` }], () => 3000);
    try {
      const reply = await client.holding(client.hosts[0]!, ['vg0/lv3'], 1000);
      assert.equal(reply.ok, false);
      assert.match(reply.error ?? '', /no such peer request: POST \/v1\/holding/);
    } finally {
      client.close();
      await server.stop();
    }
  });

  test('a peer that accepts the connection but never answers is given up after the time asked for', async () => {
    // A TLS server with hv2's certificate that reads the request and never replies.
    const tls = await loadServerTls(tlsOf(pki, 'hv2'));
    const silent = createTlsServer({ ca: tls.ca, cert: tls.cert, key: tls.key, requestCert: true }, () => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const port = (silent.address() as { port: number }).port;
    const client = new PeerClient(await loadClientTls(tlsOf(pki, 'hv1')), [{ name: 'hv2', url: `https://127.0.0.1:${port}` }], () => 30_000);
    try {
      const started = performance.now();
      const reply = await client.holding(client.hosts[0]!, ['vg0/lv3'], 300);
      assert.ok(performance.now() - started < 1000);
      assert.equal(reply.ok, false);
      assert.equal(reply.timedOut, true);
    } finally {
      client.close();
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});

describe('holding messages', () => {
  test('a query must list VG/LV names', () => {
    assert.deepEqual(parseHoldingQuery({ lvs: ['vg0/lv3', 'vg0/lv3'] }), { lvs: ['vg0/lv3'] });
    assert.throws(() => parseHoldingQuery({ lvs: [] }), /non-empty list/);
    assert.throws(() => parseHoldingQuery({ lvs: ['vg0 lv3'] }), /not VG\/LV/);
  });
  test('an answer about an LV not asked for, or with a control character in a name, is refused', () => {
    assert.throws(() => parseHoldingAnswer({ result: 'holding', rows: [{ lv: 'vg0/lv9', mode: 'ex' }] }, ['vg0/lv3']), /not asked for/);
    const bad = { result: 'holding', rows: [{ lv: 'vg0/lv3', mode: 'ex', domain: { uuid: DOMAIN, name: 'db\nfake line', phase: 'running', since: 1 } }] };
    assert.throws(() => parseHoldingAnswer(bad, ['vg0/lv3']), /malformed domain/);
  });
});
