import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { readFile } from 'node:fs/promises';
import { assertNoConflicts, heldBy, setupSharedVg } from '../harness/cluster.js';
import { domainXml, TestHost } from '../harness/host.js';
import { freePort, makePki, type TestPki } from '../harness/pki.js';
import { waitFor } from '../harness/process.js';

const UUID = '7e570000-0000-4000-8000-000000000001';
const XML = domainXml('vm1', UUID, [{ dev: '/dev/vg0/lv1' }, { dev: '/dev/vg0/lv2' }]);

interface Pair {
  a: TestHost;
  b: TestHost;
  portA: number;
  portB: number;
}

function peerConfig(pki: TestPki, self: string, port: number, other: { name: string; port: number; hostId: number }): string {
  return `peers:
  listen: "127.0.0.1:${port}"
  hosts:
    - { name: ${other.name}, url: "https://127.0.0.1:${other.port}", host_id: ${other.hostId} }
  tls: ${pki.tlsYaml(self)}
  request_timeout: 3s
migration:
  demote_timeout: 10s
  promote_grace: 1s
`;
}

/** Two hosts sharing one VG (one simulator state), each with its own bus, libvirt-dbus and daemon. */
async function twoHosts(pki: TestPki): Promise<Pair> {
  const a = await TestHost.create({ hostId: 1 });
  const b = await TestHost.create({ hostId: 2, stateFile: a.stateFile });
  const [portA, portB] = [await freePort(), await freePort()];
  await a.writeConfig(a.defaultConfig(peerConfig(pki, 'hv1', portA, { name: 'hv2', port: portB, hostId: 2 })));
  await b.writeConfig(b.defaultConfig(peerConfig(pki, 'hv2', portB, { name: 'hv1', port: portA, hostId: 1 })));
  await setupSharedVg(a, [1, 2]);
  for (const h of [a, b]) {
    await h.startLibvirt();
    await h.startDaemon();
  }
  return { a, b, portA, portB };
}

async function held(host: TestHost, hostId: number, lv = 'vg0/lv1'): Promise<string | undefined> {
  return (await heldBy(host, hostId)).get(lv);
}

async function waitModes(pair: Pair, lv: string, onA: string | undefined, onB: string | undefined, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    `${lv}: host 1 ${onA ?? 'nothing'}, host 2 ${onB ?? 'nothing'}`,
    async () => (await held(pair.a, 1, lv)) === onA && (await held(pair.a, 2, lv)) === onB,
    timeoutMs,
    100,
  );
}

describe('migration handoff between two daemons over mutual TLS (LVM simulator, libvirt-dbus Test driver)', () => {
  let pki: TestPki;
  let pair: Pair | undefined;
  before(async () => {
    pki = await makePki(['hv1', 'hv2'], 'stranger');
  });
  after(async () => {
    await pki?.dispose();
  });
  afterEach(async () => {
    if (!pair) return;
    try {
      await assertNoConflicts(pair.a);
    } finally {
      await pair.a.dispose();
      await pair.b.dispose();
      pair = undefined;
    }
  });

  test('a demote request for a guest with no outgoing migration job is refused and changes nothing; the migration fails naming the LV', async () => {
    // The Test driver runs no migration jobs (it has no GetJobStats), so the source cannot see one.
    pair = await twoHosts(pki);
    const { a, b } = pair;
    assert.equal((await a.startDomainWithHook('vm1', XML)).rc, 0);
    const migrate = await b.hook('vm1', 'migrate', 'begin', XML);
    assert.notEqual(migrate.rc, 0);
    assert.equal(migrate.stdout, '', 'the migrate hook must not print');
    assert.match(migrate.stderr, /vg0\/lv1: locked by another host/);
    assert.match(migrate.stderr, /peers said: hv1: .*(cannot tell whether it is migrating|no outgoing migration)/);
    assert.doesNotMatch(migrate.stderr, /vm1 is|running on this host/, 'a refusal names nothing the caller did not send');
    assert.equal(await held(a, 1), 'ex');
    assert.equal(await held(a, 2), undefined);
    assert.deepEqual((await a.status()).domains.map((d) => d.phase), ['running']);
  });

  test('after migrate-out on the source, the destination takes sh, then ex once the source released and told it', async () => {
    pair = await twoHosts(pki);
    const { a, b } = pair;
    assert.equal((await a.startDomainWithHook('vm1', XML)).rc, 0);
    await waitModes(pair, 'vg0/lv1', 'ex', undefined);
    assert.equal((await a.cli('migrate-out', 'vm1')).rc, 0);

    const migrate = await b.hook('vm1', 'migrate', 'begin', XML);
    assert.equal(migrate.rc, 0, migrate.stderr);
    assert.equal(migrate.stdout, '', 'the migrate hook must not print');
    for (const lv of ['vg0/lv1', 'vg0/lv2']) await waitModes(pair, lv, 'sh', 'sh', 1000);
    // prepare/start/started of the same incoming migration change nothing.
    for (const op of ['prepare', 'start', 'started']) assert.equal((await b.hook('vm1', op, 'begin', XML)).rc, 0);
    await waitModes(pair, 'vg0/lv1', 'sh', 'sh', 1000);

    // The guest now runs on B; the source's QEMU goes away and its daemon tells B.
    await b.createDomain(XML);
    await a.destroyDomain(UUID);
    for (const lv of ['vg0/lv1', 'vg0/lv2']) await waitModes(pair, lv, undefined, 'ex', 10_000);
    await waitFor('the release notice', () => /told hv2 released for domain vm1/.test(a.daemonLog()), 10_000);
    assert.match(b.daemonLog(), /LV=vg0\/lv1 FROM=sh TO=ex RESULT=ok/);
    const dest = await b.status();
    assert.deepEqual(dest.locks.map((l) => [l.lv, l.mode, l.phase]), [
      ['vg0/lv1', 'ex', 'running'],
      ['vg0/lv2', 'ex', 'running'],
    ]);
  });

  test('a migration that fails on the destination gives the source its ex back at once', async () => {
    pair = await twoHosts(pki);
    const { a, b } = pair;
    assert.equal((await a.startDomainWithHook('vm1', XML)).rc, 0);
    assert.equal((await a.cli('migrate-out', 'vm1')).rc, 0);
    assert.equal((await b.hook('vm1', 'migrate', 'begin', XML)).rc, 0);
    assert.equal((await b.hook('vm1', 'prepare', 'begin', XML)).rc, 0);
    await waitModes(pair, 'vg0/lv1', 'sh', 'sh', 1000);
    // Prepare failed on the destination: libvirt runs stopped and release there, and no event.
    await b.hook('vm1', 'stopped', 'end', XML);
    await b.hook('vm1', 'release', 'end', XML);
    for (const lv of ['vg0/lv1', 'vg0/lv2']) await waitModes(pair, lv, 'ex', undefined, 5000);
    assert.deepEqual((await a.status()).domains.map((d) => d.phase), ['running']);
  });

  test('an incoming migration that libvirt abandons after the migrate hook gives its sh back, and the source holds ex again; a start there then needs ex', async () => {
    pair = await twoHosts(pki);
    const { a, b } = pair;
    assert.equal((await a.startDomainWithHook('vm1', XML)).rc, 0);
    assert.equal((await a.cli('migrate-out', 'vm1')).rc, 0);
    // An offline migration, or one that failed before QEMU: only the migrate hook runs.
    assert.equal((await b.hook('vm1', 'migrate', 'begin', XML)).rc, 0);
    await waitModes(pair, 'vg0/lv1', 'sh', 'sh', 1000);
    for (const lv of ['vg0/lv1', 'vg0/lv2']) await waitModes(pair, lv, 'ex', undefined, 15_000);
    assert.match(b.daemonLog(), /no prepare followed its incoming migration/);
    const start = await b.hook('vm1', 'prepare', 'begin', XML);
    assert.notEqual(start.rc, 0, 'a start on B while A runs the guest must be refused');
    assert.match(start.stderr, /vg0\/lv1: locked by another host/);
    assert.equal(await held(a, 2), undefined);
  });

  test('with the source daemon down the migration is refused, naming the LV and what the peer said; the source keeps ex', async () => {
    pair = await twoHosts(pki);
    const { a, b } = pair;
    assert.equal((await a.startDomainWithHook('vm1', XML)).rc, 0);
    await a.stopDaemon();
    const migrate = await b.hook('vm1', 'migrate', 'begin', XML);
    assert.notEqual(migrate.rc, 0);
    assert.equal(migrate.stdout, '');
    assert.match(migrate.stderr, /vg0\/lv1: locked by another host/);
    assert.match(migrate.stderr, /peers said: hv1: .*(ECONNREFUSED|connect)/);
    assert.equal(await held(a, 1), 'ex');
    assert.equal(await held(a, 2), undefined);
    assert.equal((await b.status()).locks.length, 0);
  });

  test('mutual TLS: no client certificate fails the handshake; a certificate not allowed and an LV set not held change nothing', async () => {
    pair = await twoHosts(pki);
    const { a, portA } = pair;
    assert.equal((await a.startDomainWithHook('vm1', XML)).rc, 0);
    const body = JSON.stringify({ domain: UUID, lvs: ['vg0/lv1', 'vg0/lv2'] });
    const post = (path: string, tls: { cert?: Buffer; key?: Buffer }, payload = body) =>
      new Promise<{ status?: number; text?: string; error?: string }>(async (resolve) => {
        const req = request(
          { host: '127.0.0.1', port: portA, path, method: 'POST', ca: await readFile(pki.ca), ...tls, headers: { 'content-type': 'application/json' } },
          (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode, text }));
          },
        );
        req.on('error', (err) => resolve({ error: err.message }));
        req.end(payload);
      });
    const anonymous = await post('/v1/demote', {});
    assert.ok(anonymous.error || anonymous.status === undefined, `a client without a certificate got HTTP ${anonymous.status}`);
    const strangerFiles = pki.client('stranger');
    const stranger = await post('/v1/demote', { cert: await readFile(strangerFiles.cert), key: await readFile(strangerFiles.key) });
    assert.equal(stranger.status, 403, stranger.text);
    // libvirt's server certificate has no clientAuth: presented as a client certificate, it fails.
    const hv2Server = { cert: await readFile(pki.host('hv2').cert), key: await readFile(pki.host('hv2').key) };
    const serverAsClient = await post('/v1/demote', hv2Server);
    assert.ok(serverAsClient.error || serverAsClient.status === undefined, `a server certificate used as a client one got HTTP ${serverAsClient.status}`);
    await waitFor('the refusal naming the certificate purpose', () => /peer TLS handshake refused: .*unsupported certificate purpose/.test(a.daemonLog()), 2000);
    const hv2 = { cert: await readFile(pki.client('hv2').cert), key: await readFile(pki.client('hv2').key) };
    const notHeld = await post('/v1/demote', hv2, JSON.stringify({ domain: UUID, lvs: ['vg0/lv3'] }));
    assert.equal(notHeld.status, 404, notHeld.text);
    assert.match(notHeld.text ?? '', /does not hold vg0\/lv3/);
    assert.doesNotMatch(notHeld.text ?? '', /vm1|vg0\/lv1|running/, 'a not-held answer names nothing the caller did not send');
    const malformed = await post('/v1/demote', hv2, '{"domain":"x"}');
    assert.equal(malformed.status, 400);
    assert.equal(await held(a, 1), 'ex', 'refused requests must change nothing');
    assert.equal(await held(a, 1, 'vg0/lv2'), 'ex');
  });

  test('manual path: migrate-out demotes, settle takes ex back', async () => {
    pair = await twoHosts(pki);
    const { a } = pair;
    assert.equal((await a.startDomainWithHook('vm1', XML)).rc, 0);
    const out = await a.cli('migrate-out', 'vm1');
    assert.equal(out.rc, 0, out.stderr);
    await waitModes(pair, 'vg0/lv1', 'sh', undefined, 1000);
    const status = await a.cli('status');
    assert.match(status.stdout, /vg0\/lv1\s+sh\s+sh\s+vm1\s+\S+\s+migrating-out/);
    const settle = await a.cli('settle', 'vm1');
    assert.equal(settle.rc, 0, settle.stderr);
    await waitModes(pair, 'vg0/lv1', 'ex', undefined, 1000);
    const unknown = await a.cli('migrate-out', 'nosuchvm');
    assert.notEqual(unknown.rc, 0);
    assert.match(unknown.stderr, /no domain named or with UUID nosuchvm/);
  });
});
