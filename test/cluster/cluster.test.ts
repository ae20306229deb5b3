/**
 * The whole stack on two real hypervisors: the packaged daemon under systemd, nested guests on
 * LVs of a shared sanlock VG, live migration between the hosts, and the handoff benchmark. One
 * cluster for every test (see bed.ts); the tests run in order and each leaves it clean.
 */
import { after, before, describe, test } from 'node:test';
import { Bed } from './bed.js';
import { breakageTests } from './breakage-tests.js';
import { benchHandoff, report } from './bench.js';
import { lifecycleTests } from './lifecycle-tests.js';
import { migrationTests } from './migration-tests.js';
import { prepare, say, skipLoudly } from './prepare.js';
import { systemdTests } from './systemd-tests.js';

const TITLE = 'virt-lvmlockd on a two-hypervisor cluster';
const SETUP_MS = 25 * 60_000;
const BENCH_ROUNDS = Number(process.env.CLUSTER_BENCH_ROUNDS ?? 1);

const prep = await prepare();
if ('skip' in prep) {
  skipLoudly(TITLE, prep.skip);
} else {
  describe(TITLE, { timeout: SETUP_MS + 30 * 60_000 }, () => {
    let current: Bed | undefined;
    const bed = (): Bed => {
      if (!current) throw new Error('the cluster is not running (its set-up failed)');
      return current;
    };

    before(async () => {
      current = await Bed.start(prep, say);
    }, { timeout: SETUP_MS });

    after(async () => {
      await current?.stop();
    });

    describe('under systemd', () => systemdTests(bed));
    describe('guest lifecycle', () => lifecycleTests(bed));
    describe('migration and hot-plug', () => migrationTests(bed));
    describe('migrations that break', () => breakageTests(bed));
    test(`handoff benchmark (${BENCH_ROUNDS} round trips of each guest; figures, not a timed test)`, async () => {
      for (const line of report(await benchHandoff(bed(), BENCH_ROUNDS))) say(line);
    });
  });
}
