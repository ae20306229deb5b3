import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BusConnection } from '../../src/dbus/bus.js';
import { BUS_NAME, MANAGER_IFACE, OBJECT_PATH } from '../../src/control/names.js';
import { PrivateBus } from '../harness/bus.js';
import { run } from '../harness/host.js';
import { HOOK_SCRIPT } from '../harness/paths.js';

/**
 * After a libvirtd restart, libvirt runs `reconnect begin` for each running guest, and a failing
 * hook there makes libvirt kill that guest. The hook tells the daemon (so it renews libvirt-dbus's
 * event subscriptions at once) without waiting, and always exits 0.
 */
const XML = `<domain type='test'><name>vm</name><uuid>6f1a0000-0000-4000-8000-0000000000c2</uuid></domain>`;

describe('the reconnect hook', () => {
  let bus: PrivateBus;
  let runtimeDir: string;
  let daemon: BusConnection | undefined;

  before(async () => {
    bus = await PrivateBus.start();
    runtimeDir = await mkdtemp(join(tmpdir(), 'vlt-hookrec-'));
  });
  after(async () => {
    daemon?.disconnect();
    await bus?.stop();
    await rm(runtimeDir, { recursive: true, force: true });
  });

  const hook = () =>
    run(HOOK_SCRIPT, ['vm', 'reconnect', 'begin', '-'], {
      env: { VIRT_LVMLOCKD_BUS_ADDRESS: bus.address, VIRT_LVMLOCKD_RUNTIME_DIR: runtimeDir },
      input: XML,
      timeoutMs: 30_000,
    });

  test('with no daemon on the bus it still exits 0, silently (libvirt would kill the guest otherwise)', async () => {
    const r = await hook();
    assert.equal(r.rc, 0);
    assert.equal(r.stderr, '');
  });

  test('it tells the daemon, without waiting for an answer', async () => {
    const calls: unknown[][] = [];
    daemon = await BusConnection.connect(bus.address, 5000);
    daemon.serveObject(OBJECT_PATH, MANAGER_IFACE, '<node/>', {
      Hook: async (body: unknown[]) => {
        calls.push(body);
        // An answer that never comes in the hook's time: the hook must not wait for it.
        await sleep(20_000);
        return { signature: 's', body: ['late'] };
      },
    });
    await daemon.requestName(BUS_NAME, 5000);
    const t0 = Date.now();
    const r = await hook();
    assert.equal(r.rc, 0);
    assert.ok(Date.now() - t0 < 10_000, 'the hook waited for the daemon');
    for (let i = 0; i < 50 && calls.length === 0; i++) await sleep(100);
    assert.deepEqual(calls.map((c) => c.slice(0, 3)), [['vm', 'reconnect', 'begin']]);
  });
});
