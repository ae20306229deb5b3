/**
 * Live migrations between two real libvirtd instances, with the real hook and the daemon under
 * test on each, handing vg0/lv1 over through the daemons' peer channel. After every step the
 * design's invariants are checked against the LVM simulator, also over the sampled history:
 * never ex on one host while held on another, and never a guest's QEMU on a host that holds
 * nothing for its LV.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { type E2eCluster, type Guest, LV1, type Migration, withCluster } from './cluster.js';
import type { Instance } from './instance.js';

const TIMEOUT = 300_000;
/** The handoff must finish within this, after libvirt's answer (invariants 4 and 5). */
const SETTLE_MS = 30_000;
/** At 1 MiB/s a guest that keeps dirtying 23 MiB never converges: time to break the migration. */
const CRAWL_MIB = 1;
const RUNNING = 1;

/** Starts a throttled migration of a busy guest and waits until the transfer runs. */
async function crawlingMigration(c: E2eCluster, guest: Guest): Promise<Migration> {
  const migration = c.startMigration(guest, c.src, c.dst, { bandwidthMiB: CRAWL_MIB });
  await c.timed('destination QEMU up', () => c.waitForIncoming(guest, c.dst, migration));
  // Some memory on the wire, as in a real migration that breaks half-way.
  await sleep(1500);
  assert.notEqual(await c.src.libvirt.jobType(guest.uuid), 0, 'the migration job still runs on the source');
  await c.checkInvariants({ migrating: true });
  return migration;
}

/** Lets a crawling migration finish: no throttle, and a pause long enough for the busy guest. */
async function letItConverge(c: E2eCluster, guest: Guest): Promise<void> {
  await c.src.libvirt.setMigrationDowntime(guest.uuid, 10_000);
  await c.src.libvirt.setMigrationSpeed(guest.uuid, 100_000);
}

async function startOnSource(c: E2eCluster, opts: { busy?: boolean } = {}): Promise<Guest> {
  const guest = await c.startGuest(c.src, opts);
  await c.settle({ src: { [LV1]: 'ex' } }, SETTLE_MS);
  await c.checkInvariants({ settled: true });
  return guest;
}

async function expectBackOnSource(c: E2eCluster, guest: Guest): Promise<void> {
  assert.deepEqual(await c.runningOn(guest), ['src'], 'the guest runs on the source only');
  assert.equal((await c.src.libvirt.state(guest.uuid))[0], RUNNING, 'the guest is running (not paused) on the source');
  await c.settle({ src: { [LV1]: 'ex' } }, SETTLE_MS);
  await c.checkInvariants({ settled: true });
}

async function migrateAndSettle(c: E2eCluster, guest: Guest, from: Instance, to: Instance): Promise<void> {
  const outcome = await c.migrate(guest, from, to);
  assert.equal(outcome.ok, true, `migration ${from.name} -> ${to.name} failed: ${outcome.error}`);
  assert.deepEqual(await c.runningOn(guest), [to.name], `the guest runs on ${to.name} only`);
  await c.settle({ [to.name]: { [LV1]: 'ex' } }, SETTLE_MS);
  await c.checkInvariants({ settled: true });
}

test('a successful live migration: both sh during it, then dst ex and src nothing', { timeout: TIMEOUT }, async (t) => {
  await withCluster(t, {}, async (c) => {
    const guest = await startOnSource(c);
    const since = Date.now();
    await migrateAndSettle(c, guest, c.src, c.dst);
    const bothShared = c.lockHistorySince(since).some((h) => h[LV1]?.[c.src.hostId] === 'sh' && h[LV1]?.[c.dst.hostId] === 'sh');
    assert.ok(bothShared, `src and dst held ${LV1} sh together at some moment of the migration`);
  });
});

test('a migration aborted on the source: src gets ex back, dst holds nothing', { timeout: TIMEOUT }, async (t) => {
  await withCluster(t, {}, async (c) => {
    const guest = await startOnSource(c, { busy: true });
    const migration = await crawlingMigration(c, guest);
    await c.src.libvirt.abortJob(guest.uuid);
    const outcome = await migration.done;
    assert.equal(outcome.ok, false, 'the aborted migration fails');
    await expectBackOnSource(c, guest);
  });
});

test('the destination QEMU killed mid-migration: src gets ex back, dst holds nothing', { timeout: TIMEOUT }, async (t) => {
  await withCluster(t, {}, async (c) => {
    const guest = await startOnSource(c, { busy: true });
    const migration = await crawlingMigration(c, guest);
    await c.dst.killQemu(guest.name, 'SIGKILL');
    const outcome = await migration.done;
    assert.equal(outcome.ok, false, 'the migration fails without its destination QEMU');
    await expectBackOnSource(c, guest);
  });
});

test('a destination without the disk: the migration fails, src keeps ex, dst holds nothing', { timeout: TIMEOUT }, async (t) => {
  await withCluster(t, {}, async (c) => {
    const guest = await startOnSource(c);
    await c.dst.removeLvLink(`/dev/${LV1}`);
    const outcome = await c.migrate(guest, c.src, c.dst);
    assert.equal(outcome.ok, false, 'libvirt cannot start the destination without the disk');
    await expectBackOnSource(c, guest);
  });
});

test("the source's daemon down: the migration is refused naming the LV, src keeps ex, the guest keeps running", { timeout: TIMEOUT }, async (t) => {
  await withCluster(t, {}, async (c) => {
    const guest = await startOnSource(c);
    await c.src.stopDaemon();
    const outcome = await c.migrate(guest, c.src, c.dst);
    assert.equal(outcome.ok, false, 'no handoff is possible without the source daemon');
    assert.match(outcome.error ?? '', /vg0\/lv1/, 'the error names the LV');
    await expectBackOnSource(c, guest);
    // Back up, the daemon adopts the running guest as it is.
    await c.src.startDaemon();
    await expectBackOnSource(c, guest);
  });
});

for (const which of ['src', 'dst'] as const) {
  test(`the ${which === 'src' ? "source's" : "destination's"} daemon restarted mid-migration: the migration completes, dst ex, src nothing`, { timeout: TIMEOUT }, async (t) => {
    await withCluster(t, {}, async (c) => {
      const guest = await startOnSource(c, { busy: true });
      const migration = await crawlingMigration(c, guest);
      await c.timed(`restart the ${which} daemon`, () => c[which].restartDaemon());
      await c.checkInvariants({ migrating: true });
      await letItConverge(c, guest);
      const outcome = await c.timed('converge', () => migration.done);
      assert.equal(outcome.ok, true, `the migration completes: ${outcome.error}`);
      assert.deepEqual(await c.runningOn(guest), ['dst']);
      await c.settle({ dst: { [LV1]: 'ex' } }, SETTLE_MS);
      await c.checkInvariants({ settled: true });
    });
  });
}

test('migrating back and forth 5 times', { timeout: TIMEOUT }, async (t) => {
  await withCluster(t, {}, async (c) => {
    const guest = await startOnSource(c);
    for (let round = 1; round <= 5; round++) {
      try {
        await migrateAndSettle(c, guest, c.src, c.dst);
        await migrateAndSettle(c, guest, c.dst, c.src);
      } catch (err) {
        (err as Error).message = `round ${round}: ${(err as Error).message}`;
        throw err;
      }
    }
  });
});

test("one host: a guest whose QEMU is SIGKILLed has its locks released by libvirt's event alone", { timeout: TIMEOUT }, async (t) => {
  await withCluster(t, { peers: false }, async (c) => {
    const guest = await startOnSource(c);
    // libvirt still runs the hooks, but they no longer reach the daemon.
    await c.src.setHookForwarding(false);
    const since = Date.now();
    await c.src.killQemu(guest.name, 'SIGKILL');
    await c.waitForEvent(c.src, guest, 5, undefined, since);
    await c.settle({}, SETTLE_MS);
    await c.checkInvariants({ settled: true });
    assert.deepEqual(await c.runningOn(guest), []);
    const release = (await c.src.hookCalls()).find((h) => h.domain === guest.name && h.op === 'release' && h.t >= since);
    assert.ok(release, 'libvirt ran the release hook (which, disabled, told the daemon nothing)');
  });
});
