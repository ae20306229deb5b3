/**
 * Migrations that do not go to plan, on the real stack. `busy` boots a sector that fills 59 MiB
 * of its memory once and halts, so a migration throttled to 1 MiB/s stays in flight for about a
 * minute, long enough for the test to break it: aborted on the source; the source's daemon restarted in the
 * middle and the migration then finished in post-copy; and, with `tiny`, the destination's daemon
 * down, which must refuse the migration (fail closed) and leave the guest running with its lock.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { busyBootSector } from '../e2e/boot-sector.js';
import { GUESTS, type Bed } from './bed.js';
import type { GuestResult } from './agent-client.js';
import type { Hypervisor } from './hypervisor.js';
import { assertClean, waitMode } from './lifecycle-tests.js';
import { waitActive } from './systemd-tests.js';
import { domState, migrateArgs, mustVirsh, virsh } from './nested.js';
import { describe } from './probe.js';
import { say } from './prepare.js';
import { VG } from './stack.js';

const QUICK_MS = 60_000;
/** 60 MiB of non-zero pages in its 64 MiB: a minute of transfer at 1 MiB/s, time to break it. */
const BUSY_DIRTY_TO = 60 * 1024 * 1024;
const MIGRATION_MS = 5 * 60_000;

/** Writes the busy boot sector onto the LV of `busy` (activated ex for the write only). */
export async function writeBusyDisk(hv: Hypervisor): Promise<void> {
  const lv = `${VG}/${GUESTS.busy.lv}`;
  await hv.mustRun(['lvchange', '-aey', lv], { timeoutMs: QUICK_MS });
  try {
    // Dirtied once, then idle: a guest looping flat out under nested TCG slows its whole host.
    await hv.put(`/dev/${lv}`, busyBootSector({ once: true, dirtyTo: BUSY_DIRTY_TO }));
  } finally {
    await hv.mustRun(['lvchange', '-an', lv], { timeoutMs: QUICK_MS });
  }
}

/** Starts a migration of `busy` hvA→hvB at 1 MiB/s and waits until hvB holds its LV sh. */
async function crawl(bed: Bed, extra: string[] = []): Promise<Promise<GuestResult>> {
  const { a, b } = bed;
  const migration = virsh(a, migrateArgs(GUESTS.busy.name, b, ['--bandwidth', '1', ...extra]), MIGRATION_MS);
  migration.catch(() => undefined);
  await waitMode(bed, b, GUESTS.busy.lv, 'sh', 60_000);
  const views = await bed.views();
  assert.equal(views[0]!.locks.get(GUESTS.busy.lv), 'sh', `the source did not demote for the handoff: ${describe(views)}`);
  return migration;
}

/**
 * The tests with the crawling migration of `busy` are not reliable yet on nested TCG (in one run
 * the migration ended before the abort reached it): they run with CLUSTER_BREAKAGE=1 and are
 * skipped, saying so, otherwise. test/e2e runs the same breakages on real libvirt.
 */
const CRAWL = process.env.CLUSTER_BREAKAGE === '1' ? {} : { skip: 'the crawling migration is not reliable yet on nested TCG; run with CLUSTER_BREAKAGE=1 (test/e2e covers these paths on real libvirt)' };

export function breakageTests(bed: () => Bed): void {
  const busy = GUESTS.busy;
  if ('skip' in CRAWL) say(`SKIPPED the aborted and post-copy migrations of busy: ${CRAWL.skip}`);

  test('a migration aborted on the source (virsh domjobabort): hvA gets ex back, hvB holds nothing', CRAWL, async () => {
    const { a, b } = bed();
    await bed().home(busy, true);
    await waitMode(bed(), a, busy.lv, 'ex');
    const r = await bed().sampled(async () => {
      const migration = await crawl(bed());
      await mustVirsh(a, ['domjobabort', busy.name]);
      return migration;
    });
    await assertClean(bed(), 'aborted migration', r.violations);
    const outcome = await r.result;
    assert.notEqual(outcome.rc, 0, 'the aborted migration succeeded');
    await waitMode(bed(), a, busy.lv, 'ex', 60_000);
    await waitMode(bed(), b, busy.lv, undefined, 60_000);
    assert.equal(await domState(a, busy.name), 'running');
  });

  test("the source's daemon restarted mid-migration, then post-copy: the migration completes, hvB ex, hvA nothing", CRAWL, async () => {
    const { a, b } = bed();
    await bed().home(busy, true);
    await waitMode(bed(), a, busy.lv, 'ex');
    const r = await bed().sampled(async () => {
      const migration = await crawl(bed(), ['--postcopy']);
      await a.mustRun(['systemctl', 'restart', 'virt-lvmlockd'], { timeoutMs: QUICK_MS });
      assert.equal(await waitActive(a), 'active');
      const views = await bed().views();
      assert.equal(views[1]!.locks.get(busy.lv), 'sh', `hvB lost its sh while hvA's daemon restarted: ${describe(views)}`);
      await mustVirsh(a, ['migrate-postcopy', busy.name]);
      return migration;
    });
    await assertClean(bed(), 'post-copy migration across a daemon restart', r.violations);
    const outcome = await r.result;
    assert.equal(outcome.rc, 0, `the post-copy migration failed: ${outcome.stderr}`);
    await waitMode(bed(), b, busy.lv, 'ex', 60_000);
    await waitMode(bed(), a, busy.lv, undefined, 60_000);
    assert.equal(await domState(b, busy.name), 'running');
    await mustVirsh(b, ['destroy', busy.name]);
    await waitMode(bed(), b, busy.lv, undefined);
  });

  test("the destination's daemon down: the migration is refused, fail closed; hvA keeps the guest and its ex", async () => {
    const { a, b } = bed();
    const tiny = GUESTS.tiny;
    await bed().home(tiny, true);
    await waitMode(bed(), a, tiny.lv, 'ex');
    await b.mustRun(['systemctl', 'stop', 'virt-lvmlockd'], { timeoutMs: QUICK_MS });
    try {
      const r = await bed().sampled(() => virsh(a, migrateArgs(tiny.name, b)));
      await assertClean(bed(), 'migration to a host without its daemon', r.violations);
      assert.notEqual(r.result.rc, 0, 'the migration went ahead without the destination daemon');
      assert.match(r.result.stderr, /virt-lvmlockd: the daemon is not reachable on D-Bus/, r.result.stderr);
      assert.match(r.result.stderr, /fail closed/, r.result.stderr);
      await waitMode(bed(), a, tiny.lv, 'ex', 60_000);
      const views = await bed().views();
      assert.equal(views[1]!.locks.get(tiny.lv), undefined, describe(views));
      assert.equal(await domState(a, tiny.name), 'running');
    } finally {
      await b.mustRun(['systemctl', 'start', 'virt-lvmlockd'], { timeoutMs: QUICK_MS });
    }
  });
}
