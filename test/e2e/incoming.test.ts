/**
 * Incoming migrations that never start a QEMU on the destination. libvirt runs the destination's
 * `migrate begin` hook before anything else of an incoming migration, so the destination's daemon
 * takes the LVs sh there (the source's daemon demoting its ex); when no `prepare begin` follows
 * (an offline migration, or one libvirt abandons before QEMU) or the domain is defined there first,
 * the destination gives the sh back and the source takes ex back. These tests check that with
 * real libvirtd instances: the source ends ex, the destination holds nothing, and a later start on
 * the destination is refused while the guest runs on the source.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type E2eCluster, type Guest, LV1, VG, withCluster } from './cluster.js';
import { OFFLINE_MIGRATE_FLAGS } from './libvirt-api.js';

const TIMEOUT = 300_000;
/** The settle after a guest start. */
const SETTLE_MS = 30_000;
/**
 * The destination gives the sh back at the latest 3 s after its `migrate` hook (no `prepare`);
 * the rest is margin for a loaded machine: "within a few seconds".
 */
const GIVE_BACK_MS = 10_000;
const RUNNING = 1;
const SHUTOFF = 5;
const DEFINED = 0;

async function startOnSource(c: E2eCluster): Promise<Guest> {
  const guest = await c.startGuest(c.src);
  await c.settle({ src: { [LV1]: 'ex' } }, SETTLE_MS);
  await c.checkInvariants({ settled: true });
  return guest;
}

/** The guest still runs on the source alone, src holds its LV ex and dst nothing. */
async function expectStillOnSource(c: E2eCluster, guest: Guest, withinMs: number): Promise<void> {
  await c.settle({ src: { [LV1]: 'ex' } }, withinMs);
  assert.deepEqual(await c.runningOn(guest), ['src'], 'the guest runs on the source only');
  assert.equal((await c.src.libvirt.state(guest.uuid))[0], RUNNING, 'the guest is running (not paused) on the source');
  await c.checkInvariants({ settled: true });
}

/** "op subop" of the destination's hook calls for the guest since a moment, in order. */
async function dstHookOps(c: E2eCluster, guest: Guest, since: number): Promise<string[]> {
  return (await c.hookCallsSince(c.dst, guest, since)).map((h) => `${h.op} ${h.subop}`);
}

/** Whether the sampled lock history shows src and dst holding the LV sh together since a moment. */
function sharedSince(c: E2eCluster, since: number): boolean {
  return c.lockHistorySince(since).some((h) => h[LV1]?.[c.src.hostId] === 'sh' && h[LV1]?.[c.dst.hostId] === 'sh');
}

test('an offline migration of a running guest, then a start on dst: src gets ex back, the start is refused naming the LV', { timeout: TIMEOUT }, async (t) => {
  await withCluster(t, {}, async (c) => {
    const guest = await startOnSource(c);
    const since = Date.now();
    const outcome = await c.migrate(guest, c.src, c.dst, { flags: OFFLINE_MIGRATE_FLAGS });
    assert.equal(outcome.ok, true, `the offline migration succeeds: ${outcome.error}`);
    // What libvirt did on the destination: the migrate hook only, no QEMU, the domain defined.
    const ops = await dstHookOps(c, guest, since);
    assert.deepEqual(ops, ['migrate begin'], 'an offline migration runs only the migrate hook on the destination');
    await c.waitForEvent(c.dst, guest, DEFINED, undefined, since, GIVE_BACK_MS);
    t.diagnostic(`offline migration: ${outcome.ms} ms; src and dst held ${LV1} sh together at a sampled moment: ${sharedSince(c, since)}`);

    await c.timed('give back after the offline migration', () => expectStillOnSource(c, guest, GIVE_BACK_MS));
    assert.ok((await c.dst.libvirt.allDomains()).includes(guest.uuid), 'the offline migration left the definition on dst');
    assert.equal((await c.dst.libvirt.state(guest.uuid))[0], SHUTOFF, 'the domain is shut off on dst');

    // Its definition now exists on dst: starting it there needs ex, which src holds.
    const startedAt = Date.now();
    await assert.rejects(c.dst.libvirt.create(guest.uuid), (err: Error) => {
      assert.match(err.message, new RegExp(`${VG}/lv1`), `the refusal names the LV: ${err.message}`);
      t.diagnostic(`start on dst refused: ${err.message}`);
      return true;
    });
    assert.ok((await dstHookOps(c, guest, startedAt)).includes('prepare begin'), 'the start on dst reached the prepare hook');
    assert.equal((await c.dst.libvirt.state(guest.uuid))[0], SHUTOFF, 'the domain stays shut off on dst');
    await expectStillOnSource(c, guest, GIVE_BACK_MS);
  });
});

test('an incoming migration libvirt abandons after the migrate hook (name taken on dst by another uuid): src gets ex back, dst holds nothing', { timeout: TIMEOUT }, async (t) => {
  await withCluster(t, {}, async (c) => {
    const guest = await startOnSource(c);
    // Another domain by the same name on dst: virDomainObjListAdd refuses the incoming one, which
    // libvirt does after the migrate hook and before the prepare hook.
    const other = await c.defineDomain(c.dst, { name: guest.name, disks: [{ dev: `/dev/${VG}/lv2` }] });
    const since = Date.now();
    const outcome = await c.migrate(guest, c.src, c.dst);
    assert.equal(outcome.ok, false, 'the migration fails');
    assert.match(outcome.error ?? '', new RegExp(`already exists with uuid ${other}`), `libvirt refused the incoming domain for its name: ${outcome.error}`);
    t.diagnostic(`migration refused after ${outcome.ms} ms: ${outcome.error}`);
    assert.deepEqual(await dstHookOps(c, guest, since), ['migrate begin'], 'libvirt ran the migrate hook on dst, and no other');

    await c.timed('give back after the abandoned incoming migration', () => expectStillOnSource(c, guest, GIVE_BACK_MS));
    // The hand-off did happen: the destination took sh at its migrate hook, then gave it back.
    assert.ok(sharedSince(c, since), `src and dst held ${LV1} sh together while the incoming migration was pending`);
    assert.deepEqual(
      c.dst.libvirt.events.filter((e) => e.uuid === guest.uuid && e.t >= since),
      [],
      'libvirt emitted no event on dst for the abandoned incoming domain',
    );
    assert.equal((await c.dst.libvirt.state(other))[0], SHUTOFF, 'the other domain on dst is untouched');
  });
});
