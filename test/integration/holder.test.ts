import { afterEach, after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { heldBy, setupSharedVg } from '../harness/cluster.js';
import { domainXml, TestHost } from '../harness/host.js';
import { freePort, makePki, type TestPki } from '../harness/pki.js';

const VM1 = '7e570000-0000-4000-8000-0000000000a1';
const VM2 = '7e570000-0000-4000-8000-0000000000a2';
const XML1 = domainXml('vm1', VM1, [{ dev: '/dev/vg0/lv1' }]);
// Another guest on the same LV: a start that must be refused while vm1 runs on the other host.
const XML2 = domainXml('vm2', VM2, [{ dev: '/dev/vg0/lv1' }]);

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

async function twoHosts(pki: TestPki): Promise<[TestHost, TestHost]> {
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
  return [a, b];
}

describe('a refused start names the holder (LVM simulator, two daemons over mutual TLS)', () => {
  let pki: TestPki;
  let hosts: TestHost[] = [];
  before(async () => {
    pki = await makePki(['hv1', 'hv2']);
  });
  after(async () => {
    await pki?.dispose();
  });
  afterEach(async () => {
    for (const h of hosts) await h.dispose();
    hosts = [];
  });

  test('lvm >= 2.03.33 names host_id 1: the refusal names hv1 and the domain running there, and comes within the 1 s budget', async () => {
    hosts = await twoHosts(pki);
    const [a, b] = hosts as [TestHost, TestHost];
    await a.sim('set', 'hostIdSuffix', 'true');
    assert.equal((await a.startDomainWithHook('vm1', XML1)).rc, 0);
    const refused = await b.hook('vm2', 'prepare', 'begin', XML2);
    assert.notEqual(refused.rc, 0);
    assert.match(refused.stderr, /vg0\/lv1: locked ex by hv1 \(host_id 1\), domain vm1 (running|starting) there since \d\d:\d\d:\d\d/);
    assert.equal((await heldBy(a, 2)).get('vg0/lv1'), undefined, 'host 2 took nothing');
    assert.equal((await heldBy(a, 1)).get('vg0/lv1'), 'ex');
  });

  test('lvm 2.03.16 (no host_id) and no sanlock serving the VG: the refusal says why the holder is unknown and names no host', async () => {
    hosts = await twoHosts(pki);
    const [a, b] = hosts as [TestHost, TestHost];
    assert.equal((await a.startDomainWithHook('vm1', XML1)).rc, 0);
    const refused = await b.hook('vm2', 'prepare', 'begin', XML2);
    assert.notEqual(refused.rc, 0);
    // No sanlock daemon serves the simulator's VG, so the read fails whatever this machine has;
    // the simulator's lvs is a Node process that can take more than the 1 s budget to start on a
    // loaded machine, so that step may be the one that ran out of time.
    assert.match(refused.stderr, /vg0\/lv1: locked by another host \(holder unknown: (sanlock client read failed: |timed out: (lvs|sanlock client read) gave no answer within 1 s\))/);
    assert.doesNotMatch(refused.stderr, /hv1|host_id/);
    // A finished lvs is logged by the simulator: it ran with the lease location's arguments.
    const lvs = (await b.simLogLines()).filter((l) => l.host === 2 && l.argv.includes('lv_lockargs'));
    for (const l of lvs) assert.deepEqual(l.argv, ['lvs', '--nolocking', '--reportformat', 'json', '-o', 'vg_name,lv_name,lv_uuid,lv_lockargs', 'vg0/lv1']);
  });
});
