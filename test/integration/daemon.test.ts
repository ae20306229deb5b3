import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { domainXml, TestHost } from '../harness/host.js';
import { assertNoConflicts, heldBy, setupSharedVg } from '../harness/cluster.js';
import { processesWithEnv, waitFor } from '../harness/process.js';

const UUID1 = '6f1a0000-0000-4000-8000-000000000001';
const UUID2 = '6f1a0000-0000-4000-8000-000000000002';
const OTHER_HOST = 7;

/** Each test gets a fresh bus, libvirt-dbus, cluster state and daemon (libvirt-dbus's own test habit). */
async function freshHost(extraConfig = ''): Promise<TestHost> {
  const host = await TestHost.create();
  if (extraConfig) await host.writeConfig(host.defaultConfig(extraConfig));
  await setupSharedVg(host, [host.hostId, OTHER_HOST]);
  await host.startLibvirt();
  await host.startDaemon();
  return host;
}

async function waitHeld(host: TestHost, lv: string, mode: string | undefined): Promise<void> {
  await waitFor(`${lv} ${mode ?? 'released'} on host ${host.hostId}`, async () => (await heldBy(host)).get(lv) === mode, 10_000);
}

describe('one host: libvirt-dbus Test driver, the hook, the LVM simulator and the daemon', () => {
  let host: TestHost;
  afterEach(async () => {
    if (host) {
      try {
        await assertNoConflicts(host);
      } finally {
        await host.dispose();
      }
    }
  });

  test('a start takes ex on every managed LV before QEMU exists, and a destroy releases them', async () => {
    host = await freshHost();
    const xml = domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }, { dev: '/dev/mapper/vg0-lv2' }]);
    const hook = await host.startDomainWithHook('vm1', xml);
    assert.equal(hook.rc, 0, hook.stderr);
    assert.equal(hook.stdout, '');
    const held = await heldBy(host);
    assert.equal(held.get('vg0/lv1'), 'ex');
    assert.equal(held.get('vg0/lv2'), 'ex');
    const status = await host.status();
    assert.deepEqual(
      status.locks.map((l) => [l.lv, l.mode, l.domain]),
      [
        ['vg0/lv1', 'ex', UUID1],
        ['vg0/lv2', 'ex', UUID1],
      ],
    );
    await host.destroyDomain(UUID1);
    await waitHeld(host, 'vg0/lv1', undefined);
    await waitHeld(host, 'vg0/lv2', undefined);
    assert.equal((await host.status()).locks.length, 0);
    assert.match(host.daemonLog(), /LV=vg0\/lv1 FROM=ex TO=off RESULT=ok/);
  });

  test('one lvchange process per volume group per transition, however many disks', async () => {
    host = await freshHost();
    const xml = domainXml('vm1', UUID1, ['lv1', 'lv2', 'lv3', 'lv4'].map((lv) => ({ dev: `/dev/vg0/${lv}` })));
    const before = (await host.simLogLines()).length;
    const hook = await host.hook('vm1', 'prepare', 'begin', xml);
    assert.equal(hook.rc, 0, hook.stderr);
    const lvchanges = (await host.simLogLines()).slice(before).filter((l) => l.argv.includes('lvchange'));
    assert.equal(lvchanges.length, 1, JSON.stringify(lvchanges));
    assert.deepEqual(lvchanges[0].argv.slice(-5), ['-aey', 'vg0/lv1', 'vg0/lv2', 'vg0/lv3', 'vg0/lv4']);
  });

  test('a graceful shutdown releases the locks too', async () => {
    host = await freshHost();
    const xml = domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }]);
    assert.equal((await host.startDomainWithHook('vm1', xml)).rc, 0);
    await host.shutdownDomain(UUID1);
    await waitHeld(host, 'vg0/lv1', undefined);
  });

  test('a shareable disk is locked sh, the others ex', async () => {
    host = await freshHost();
    const xml = domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }, { dev: '/dev/vg0/shared1', shareable: true }]);
    assert.equal((await host.startDomainWithHook('vm1', xml)).rc, 0);
    const held = await heldBy(host);
    assert.equal(held.get('vg0/lv1'), 'ex');
    assert.equal(held.get('vg0/shared1'), 'sh');
    // Another host can share it too, as lvmlockd allows.
    const other = await host.lvmAs(OTHER_HOST, 'lvchange', '-asy', 'vg0/shared1');
    assert.equal(other.rc, 0, other.stderr);
  });

  test('a disk in a VG without lvmlockd is left alone', async () => {
    host = await freshHost();
    const xml = domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }, { dev: '/dev/localvg/scratch' }]);
    const hook = await host.startDomainWithHook('vm1', xml);
    assert.equal(hook.rc, 0, hook.stderr);
    const status = await host.status();
    assert.deepEqual(status.locks.map((l) => l.lv), ['vg0/lv1']);
    const lvchanges = (await host.simLogLines()).filter((l) => l.argv.includes('lvchange'));
    assert.ok(lvchanges.every((l) => !l.argv.some((a) => a.startsWith('localvg'))), JSON.stringify(lvchanges));
  });

  test('a start is refused, naming the LV and the reason, when another host holds the LV; nothing leaks', async () => {
    host = await freshHost();
    const taken = await host.lvmAs(OTHER_HOST, 'lvchange', '-aey', 'vg0/lv2');
    assert.equal(taken.rc, 0, taken.stderr);
    const xml = domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }, { dev: '/dev/vg0/lv2' }]);
    const hook = await host.hook('vm1', 'prepare', 'begin', xml);
    assert.notEqual(hook.rc, 0);
    assert.equal(hook.stdout, '');
    assert.match(hook.stderr, /vg0\/lv2/);
    assert.match(hook.stderr, /locked by (another|other) host/i);
    assert.equal(hook.stderr.trim().split('\n').length, 1, 'one line for libvirt to show');
    // lv1 was activated by the same lvchange and must have been given back.
    const held = await heldBy(host);
    assert.equal(held.get('vg0/lv1'), undefined);
    assert.equal((await host.status()).locks.length, 0);
    assert.match(host.daemonLog(), /LV=vg0\/lv2 FROM=none TO=ex RESULT=failed/);
  });

  test('the release hook gives back the locks of a start that failed before any event', async () => {
    host = await freshHost();
    const xml = domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }]);
    assert.equal((await host.hook('vm1', 'prepare', 'begin', xml)).rc, 0);
    assert.equal((await heldBy(host)).get('vg0/lv1'), 'ex');
    // QEMU never came up: libvirt runs stopped and release, and emits no event.
    const stopped = await host.hook('vm1', 'stopped', 'end', xml);
    const release = await host.hook('vm1', 'release', 'end', xml);
    assert.equal(stopped.rc, 0);
    assert.equal(release.rc, 0);
    assert.equal(release.stdout, '');
    await waitHeld(host, 'vg0/lv1', undefined);
    assert.equal((await host.status()).locks.length, 0);
  });

  test('a release hook for a domain libvirt still runs releases nothing', async () => {
    host = await freshHost();
    const xml = domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }]);
    assert.equal((await host.startDomainWithHook('vm1', xml)).rc, 0);
    // A stray release end (a failed incoming of the same UUID, or a late one of an earlier run).
    assert.equal((await host.hook('vm1', 'release', 'end', xml)).rc, 0);
    await waitFor('the daemon to judge the release', () => /release end for domain vm1, but libvirt still runs it here/.test(host.daemonLog()), 10_000);
    assert.equal((await heldBy(host)).get('vg0/lv1'), 'ex');
    assert.deepEqual((await host.status()).domains.map((d) => [d.name, d.phase]), [['vm1', 'running']]);
  });

  test('two local domains cannot share a non-shareable LV', async () => {
    host = await freshHost();
    assert.equal((await host.startDomainWithHook('vm1', domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }]))).rc, 0);
    const hook = await host.hook('vm2', 'prepare', 'begin', domainXml('vm2', UUID2, [{ dev: '/dev/vg0/lv1' }]));
    assert.notEqual(hook.rc, 0);
    assert.match(hook.stderr, /vg0\/lv1: already used by domain vm1/);
    assert.equal((await heldBy(host)).get('vg0/lv1'), 'ex');
  });

  test('malformed XML makes the hook fail with a clear message', async () => {
    host = await freshHost();
    const hook = await host.hook('vm1', 'prepare', 'begin', '<domain><name>vm1</name><uuid>');
    assert.notEqual(hook.rc, 0);
    assert.match(hook.stderr, /virt-lvmlockd: cannot read the domain XML of vm1/);
  });

  test('an LVM command that hangs is killed at lvm.timeout and the start fails, naming the LV', async () => {
    host = await freshHost();
    await host.writeConfig(host.defaultConfig().replace('timeout: 5s\n  max_parallel', 'timeout: 1s\n  max_parallel'));
    const reload = await host.cli('reload');
    assert.equal(reload.rc, 0, reload.stderr);
    await host.sim('set', 'hang', '["lvchange"]');
    const started = Date.now();
    const hook = await host.hook('vm1', 'prepare', 'begin', domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }]));
    const took = Date.now() - started;
    assert.notEqual(hook.rc, 0);
    assert.match(hook.stderr, /vg0\/lv1/);
    assert.match(hook.stderr, /timed out|timeout/i);
    assert.ok(took < 15_000, `the hook answered after ${took} ms`);
    await host.sim('set', 'hang', '[]');
    // The killed lvchange left no process behind; only the daemon itself carries the state's name.
    const leftovers = (await processesWithEnv('LVMSIM_STATE', host.stateFile)).filter((pid) => pid !== host.daemon?.pid);
    assert.deepEqual(leftovers, []);
    assert.equal((await heldBy(host)).get('vg0/lv1'), undefined);
  });

  test('ops that need no answer return at once without the daemon; gated ops fail closed when it is down', async () => {
    host = await freshHost();
    await host.stopDaemon();
    const xml = domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }]);
    for (const [op, subop] of [
      ['release', 'end'],
      ['stopped', 'end'],
      ['started', 'begin'],
      ['reconnect', 'begin'],
    ]) {
      const r = await host.hook('vm1', op, subop, xml);
      assert.equal(r.rc, 0, `${op} ${subop}: ${r.stderr}`);
      assert.equal(r.stdout, '');
    }
    for (const op of ['prepare', 'migrate']) {
      const r = await host.hook('vm1', op, 'begin', xml);
      assert.notEqual(r.rc, 0, op);
      assert.equal(r.stdout, '', 'the migrate hook must never print on stdout');
      assert.match(r.stderr, /virt-lvmlockd: the daemon is not reachable/);
      assert.match(r.stderr, /fail closed/);
    }
  });

  test('a restarted daemon reconciles: running domains get their locks back, what it took for gone domains is released, an admin\'s activation is left alone', async () => {
    host = await freshHost();
    assert.equal((await host.startDomainWithHook('vm1', domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }]))).rc, 0);
    assert.equal((await host.startDomainWithHook('vm2', domainXml('vm2', UUID2, [{ dev: '/dev/vg0/lv2' }]))).rc, 0);
    await host.stopDaemon();
    // While it was down: the guest's lock was lost (an admin's lvchange -an), vm2 went away
    // unseen, and an admin activated an LV for a copy.
    assert.equal((await host.lvm('lvchange', '-an', 'vg0/lv1')).rc, 0);
    await host.destroyDomain(UUID2);
    assert.equal((await host.lvm('lvchange', '-aey', 'vg0/lv3')).rc, 0);
    await host.startDaemon();
    const held = await heldBy(host);
    assert.equal(held.get('vg0/lv1'), 'ex');
    assert.equal(held.get('vg0/lv2'), undefined, 'the daemon took vg0/lv2 for vm2, which is gone');
    assert.equal(held.get('vg0/lv3'), 'ex', 'an LV the daemon did not take is never released by default');
    const status = await host.status();
    assert.deepEqual(status.locks.map((l) => [l.lv, l.mode, l.domain, l.phase]), [
      ['vg0/lv1', 'ex', UUID1, 'running'],
      ['vg0/lv3', 'ex', '-', 'held, not ours'],
    ]);
    assert.match(host.daemonLog(), /held, not ours \(left alone\): vg0\/lv3/);
  });

  test('events resume after libvirt-dbus restarts', async () => {
    host = await freshHost();
    assert.equal((await host.startDomainWithHook('vm1', domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }]))).rc, 0);
    await host.libvirtDbus.restart();
    // The Test driver forgets its domains on restart, so vm1 is gone: the owner change triggers a
    // reconcile that releases its lock.
    await waitHeld(host, 'vg0/lv1', undefined);
    assert.equal((await host.startDomainWithHook('vm2', domainXml('vm2', UUID2, [{ dev: '/dev/vg0/lv2' }]))).rc, 0);
    assert.equal((await heldBy(host)).get('vg0/lv2'), 'ex');
    await host.destroyDomain(UUID2);
    await waitHeld(host, 'vg0/lv2', undefined);
  });

  test('SIGHUP applies a valid config and keeps the old one when the new one is invalid', async () => {
    host = await freshHost();
    await host.writeConfig(host.defaultConfig('volumes:\n  exclude_vgs: [vg0]\n'));
    host.daemon?.kill('SIGHUP');
    await waitFor('the reload message', () => /reloaded .*applied: .*volumes\.exclude_vgs/.test(host.daemonLog()), 10_000);
    const excluded = await host.hook('vm1', 'prepare', 'begin', domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }]));
    assert.equal(excluded.rc, 0, excluded.stderr);
    assert.equal((await heldBy(host)).get('vg0/lv1'), undefined, 'an excluded VG is not managed');

    await host.writeConfig('lvm:\n  timeout: 30\n');
    host.daemon?.kill('SIGHUP');
    await waitFor('the reload failure', () => /reload failed, keeping the old configuration: .*lvm\.timeout/.test(host.daemonLog()), 10_000);
    assert.ok(host.daemon?.running, 'an invalid config must not stop the daemon');
    const cli = await host.cli('reload');
    assert.notEqual(cli.rc, 0);
    assert.match(cli.stderr, /lvm\.timeout/);
    // The old (valid) config is still in force: vg0 still excluded.
    const again = await host.hook('vm2', 'prepare', 'begin', domainXml('vm2', UUID2, [{ dev: '/dev/vg0/lv2' }]));
    assert.equal(again.rc, 0, again.stderr);
    assert.equal((await heldBy(host)).get('vg0/lv2'), undefined);
  });

  test('the daemon exits non-zero when its bus dies', async () => {
    host = await freshHost();
    host.bus.kill();
    const exit = await Promise.race([host.daemon!.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000))]);
    assert.notEqual(exit, 'hung');
    assert.notEqual((exit as { code: number | null }).code, 0);
    assert.match(host.daemonLog(), /fatal: D-Bus connection/);
  });

  test('virt-lvmlockctl status prints a table, and reconcile reports', async () => {
    host = await freshHost();
    assert.equal((await host.startDomainWithHook('vm1', domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }]))).rc, 0);
    const status = await host.cli('status');
    assert.equal(status.rc, 0, status.stderr);
    assert.match(status.stdout, /^LV\s+MODE\s+WANTED\s+DOMAIN\s+UUID\s+PHASE\s+PEER/m);
    assert.match(status.stdout, new RegExp(`vg0/lv1\\s+ex\\s+ex\\s+vm1\\s+${UUID1}\\s+running`));
    const reconcile = await host.cli('reconcile');
    assert.equal(reconcile.rc, 0, reconcile.stderr);
    assert.match(reconcile.stdout, /reconciled 2 running domains/);
    const hookFile = await readFile(join(host.runtimeDir, 'hook.conf'), 'utf8');
    assert.match(hookFile, /^ops=migrate prepare$/m);
  });
});
