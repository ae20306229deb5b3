import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BusConnection, ServiceError } from '../../src/dbus/bus.js';
import { BUS_NAME, ERROR_REFUSED, MANAGER_IFACE, OBJECT_PATH } from '../../src/control/names.js';
import { PrivateBus } from '../harness/bus.js';
import { run } from '../harness/host.js';
import { HOOK_SCRIPT } from '../harness/paths.js';

/**
 * The hook prints the daemon's verdict as it is. A stand-in for the daemon refuses with a message
 * holding backslash sequences that dash's echo would interpret (\n a newline, \c the end of output).
 */
const VERDICT = String.raw`virt-lvmlockd: vg0/lv\new of vm\c1 is locked by another host \\ (try again)`;
const XML = `<domain type='test'><name>vm</name><uuid>6f1a0000-0000-4000-8000-0000000000c1</uuid></domain>`;

describe('hook messages reach libvirt intact', () => {
  let bus: PrivateBus;
  let runtimeDir: string;
  let daemon: BusConnection | undefined;

  before(async () => {
    bus = await PrivateBus.start();
    runtimeDir = await mkdtemp(join(tmpdir(), 'vlt-hookmsg-'));
  });
  after(async () => {
    daemon?.disconnect();
    await bus?.stop();
    await rm(runtimeDir, { recursive: true, force: true });
  });

  const hook = (name: string, input: string) =>
    run(HOOK_SCRIPT, [name, 'prepare', 'begin', '-'], {
      env: { VIRT_LVMLOCKD_BUS_ADDRESS: bus.address, VIRT_LVMLOCKD_RUNTIME_DIR: runtimeDir },
      input,
      timeoutMs: 30_000,
    });

  test('with no daemon on the bus, a domain name with backslashes is printed as it is', async () => {
    const r = await hook(String.raw`vm\c\n2`, XML);
    assert.equal(r.rc, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.split('\n').length, 2, `one line: ${JSON.stringify(r.stderr)}`);
    assert.match(r.stderr, /^virt-lvmlockd: the daemon is not reachable on D-Bus .*; refusing prepare of vm\\c\\n2 because its LV locks cannot be taken \(fail closed\)\n$/);
  });

  test("a daemon refusal with backslash sequences arrives on the hook's stderr byte for byte", async () => {
    daemon = await BusConnection.connect(bus.address, 5000);
    daemon.serveObject(OBJECT_PATH, MANAGER_IFACE, '<node/>', {
      Hook: async () => {
        throw new ServiceError(ERROR_REFUSED, VERDICT);
      },
    });
    await daemon.requestName(BUS_NAME, 5000);
    const r = await hook('vm', XML);
    assert.equal(r.rc, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `${VERDICT}\n`);
  });
});
