import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BusConnection, DbusCallError } from '../../src/dbus/bus.js';
import { PrivateBus } from '../harness/bus.js';

const SILENT = 'org.virtlvmlockd.test.Silent';

describe('BusConnection.call against a callee that never answers', () => {
  let bus: PrivateBus;
  let callee: BusConnection;
  let caller: BusConnection;

  before(async () => {
    bus = await PrivateBus.start();
    callee = await BusConnection.connect(bus.address, 5000);
    // Accepts every call and never replies, like a daemon stuck in a long job.
    callee.serveObject('/silent', SILENT, '<node/>', { Wait: () => new Promise(() => undefined) });
    caller = await BusConnection.connect(bus.address, 5000);
  });

  after(async () => {
    caller?.disconnect();
    callee?.disconnect();
    await bus?.stop();
  });

  test('each timed-out call fails with a timeout naming the call, and leaves no reply handler behind', async () => {
    const before = caller.pendingCalls;
    const calls = 25;
    for (let i = 0; i < calls; i++) {
      await assert.rejects(
        caller.call({ destination: callee.uniqueName, path: '/silent', interface: SILENT, member: 'Wait' }, 20),
        (err: unknown) => err instanceof DbusCallError && /Silent\.Wait on \/silent failed: .*timed out after 20 ms/.test(err.message),
      );
    }
    assert.equal(caller.pendingCalls - before, 0, `${caller.pendingCalls - before} reply handlers left after ${calls} timed-out calls`);
  });

  test('a call that is answered still gets its reply, and leaves nothing pending', async () => {
    const [owner] = await caller.call(
      { destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'GetNameOwner', signature: 's', body: ['org.freedesktop.DBus'] },
      5000,
    );
    assert.equal(owner, 'org.freedesktop.DBus');
    assert.equal(caller.pendingCalls, 0);
  });
});
