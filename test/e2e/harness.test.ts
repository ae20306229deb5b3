/**
 * Smoke tests of the end-to-end harness itself, independent of the daemons' peer channel: the two
 * instances are isolated hosts that share one LV, the real hook reaches each instance's daemon on
 * "the system bus", a guest start takes its lock through libvirt, and a live migration runs.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { LV1, withCluster } from './cluster.js';

const TIMEOUT = 240_000;
const DBUS_GET_ID = ['--print-reply=literal', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.GetId'];

test('each instance is its own host: hostname, system bus, daemon, and /dev/vg0/lv1 on the shared loop device', { timeout: TIMEOUT }, async (t) => {
  await withCluster(t, { peers: false }, async (c) => {
    const ids = new Set<string>();
    for (const i of c.instances) {
      const hostname = (await i.namespace.exec('hostname', [])).stdout.trim();
      assert.equal(hostname, i.spec.hostname, `hostname inside ${i.name}`);

      const inside = (await i.namespace.exec('dbus-send', ['--system', ...DBUS_GET_ID])).stdout.trim();
      const outside = (await i.namespace.exec('dbus-send', [`--bus=${i.busAddress}`, ...DBUS_GET_ID])).stdout.trim();
      assert.ok(inside.length > 0, `${i.name}: the system bus answered GetId`);
      assert.equal(inside, outside, `${i.name}: "the system bus" inside the namespace is the instance's private bus`);
      ids.add(inside);

      const link = (await i.namespace.exec('readlink', ['-f', `/dev/${LV1}`])).stdout.trim();
      assert.match(link, /^\/dev\/loop\d+$/, `${i.name}: /dev/${LV1} leads to the shared loop device`);

      const status = JSON.parse((await i.cliInside('status', '--json')).stdout) as { managedVgs: string[] };
      assert.ok(Array.isArray(status.managedVgs), `${i.name}: virt-lvmlockctl reached the daemon on the namespace's system bus`);
      const hookConf = await readFile(join(i.dir, 'vlrun', 'hook.conf'), 'utf8');
      assert.match(hookConf, /^ops=/m, `${i.name}: the daemon published the hook settings in /run/virt-lvmlockd inside the namespace`);
    }
    assert.equal(ids.size, 2, 'src and dst have different buses');
    const links = await Promise.all(c.instances.map(async (i) => (await i.namespace.exec('readlink', ['-f', `/dev/${LV1}`])).stdout.trim()));
    assert.equal(links[0], links[1], 'both instances see the same device as the LV');
    assert.equal(existsSync('/dev/vg0'), false, 'the host /dev is left alone');
    await c.checkInvariants({ settled: true });
  });
});

test('a guest start takes ex through the real hook and libvirt, and destroy releases it', { timeout: TIMEOUT }, async (t) => {
  await withCluster(t, { peers: false }, async (c) => {
    const guest = await c.startGuest(c.src);
    await c.settle({ src: { [LV1]: 'ex' } });
    await c.checkInvariants({ settled: true });
    const ops = (await c.src.hookCalls()).filter((h) => h.domain === guest.name).map((h) => `${h.op} ${h.subop}`);
    assert.deepEqual(ops.slice(0, 3), ['prepare begin', 'start begin', 'started begin'], 'libvirt ran the hooks of a start');
    assert.deepEqual(await c.runningOn(guest), ['src']);

    await c.src.libvirt.destroy(guest.uuid);
    await c.settle({}, 30_000);
    await c.checkInvariants({ settled: true });
  });
});

test('a guest with a shareable disk migrates live both ways without any peer (sh on each side)', { timeout: TIMEOUT }, async (t) => {
  await withCluster(t, { peers: false }, async (c) => {
    const guest = await c.startGuest(c.src, { disks: [{ dev: `/dev/${LV1}`, shareable: true }] });
    await c.settle({ src: { [LV1]: 'sh' } });
    await c.checkInvariants({ settled: true });

    const there = await c.migrate(guest, c.src, c.dst);
    assert.equal(there.ok, true, `migration src -> dst: ${there.error}`);
    assert.deepEqual(await c.runningOn(guest), ['dst']);
    await c.settle({ dst: { [LV1]: 'sh' } });
    await c.checkInvariants({ settled: true });
    assert.ok((await c.dst.hookCalls()).some((h) => h.op === 'migrate' && h.subop === 'begin'), 'the destination ran the migrate hook');

    const back = await c.migrate(guest, c.dst, c.src);
    assert.equal(back.ok, true, `migration dst -> src: ${back.error}`);
    assert.deepEqual(await c.runningOn(guest), ['src']);
    await c.settle({ src: { [LV1]: 'sh' } });
    await c.checkInvariants({ settled: true });
  });
});

test('without peers, a migration of a guest whose LV is ex on the source is refused by the destination', { timeout: TIMEOUT }, async (t) => {
  await withCluster(t, { peers: false }, async (c) => {
    const guest = await c.startGuest(c.src);
    await c.settle({ src: { [LV1]: 'ex' } });

    const outcome = await c.migrate(guest, c.src, c.dst);
    assert.equal(outcome.ok, false, 'the migration must fail');
    assert.match(outcome.error ?? '', /vg0\/lv1/, 'the error names the LV');
    assert.deepEqual(await c.runningOn(guest), ['src'], 'the guest keeps running on the source');
    await c.settle({ src: { [LV1]: 'ex' } });
    await c.checkInvariants({ settled: true });
  });
});

test('the checker catches a guest whose QEMU runs on a host without its lock (destination hook disabled)', { timeout: TIMEOUT }, async (t) => {
  // No configuration can let a start run without ex, so the destination's hook is replaced by
  // one that tells the daemon nothing.
  await withCluster(t, { peers: false }, async (c) => {
    const guest = await c.startGuest(c.src);
    await c.settle({ src: { [LV1]: 'ex' } });
    await c.dst.setHookForwarding(false);
    // libvirt knows nothing of the locks: with no hook gate the migration itself succeeds.
    const outcome = await c.migrate(guest, c.src, c.dst);
    assert.equal(outcome.ok, true, `migration: ${outcome.error}`);
    await assert.rejects(c.checkInvariants(), new RegExp(`history: .*${guest.name}'s QEMU exists on dst .* but dst holds no lock on vg0/lv1`));
  });
});
