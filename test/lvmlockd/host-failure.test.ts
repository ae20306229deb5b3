/**
 * Host A dies (its QEMU process is killed) while holding an LV ex. sanlock has no way to know A is
 * gone except that A stops renewing its host lease: B is refused until that lease expires
 * (sanlock's host_dead time, 8 x io_timeout + 60 s), then gets ex. Nothing fences A here (no
 * watchdog), so a killed QEMU stands in for a dead host.
 *
 * Opt-in (LVMLOCKD_TESTBED_FAILOVER=1): it waits out the lease, about 2.5 min with lvmlockd's
 * default I/O timeout of 10 s (LVMLOCKD_TESTBED_IO_TIMEOUT=5 makes it about 2 min).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ioTimeoutFromEnv, prepare, say, skipLoudly } from './prepare.js';
import { Testbed } from './testbed.js';

const TITLE = 'host A dies holding ex: B is refused until the sanlock lease expires, then takes ex';
/** lvmlockd's own default for -o. */
const DEFAULT_IO_TIMEOUT_S = 10;
/** sanlock's watchdog_fire_timeout, part of host_dead even without a watchdog. */
const WATCHDOG_FIRE_S = 60;
const RETRY_EVERY_MS = 5000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (process.env.LVMLOCKD_TESTBED_FAILOVER !== '1') {
  skipLoudly(TITLE, 'opt-in: set LVMLOCKD_TESTBED_FAILOVER=1 (boots its own test bed and waits out a sanlock lease: about 3.5 min more)');
} else {
  const prepared = await prepare();
  if ('skip' in prepared) {
    skipLoudly(TITLE, prepared.skip);
  } else {
    test(TITLE, async () => {
      const ioTimeout = ioTimeoutFromEnv();
      const io = ioTimeout ?? DEFAULT_IO_TIMEOUT_S;
      const renewalFailS = 8 * io;
      const hostDeadS = renewalFailS + WATCHDOG_FIRE_S;
      const bed = await Testbed.start(prepared.image, prepared.tools, {
        label: 'host-failure',
        ioTimeoutSec: ioTimeout,
        layout: { vg: 'vg0', plain: ['lv1'], thin: [] },
        log: say,
      });
      try {
        const refusal = '  LV locked by other host: vg0/lv1\n  Failed to lock logical volume vg0/lv1.\n';
        await bed.must('A', ['lvchange', '-aey', 'vg0/lv1']);
        await bed.open('A', 'vg0/lv1');
        const before = await bed.run('B', ['lvchange', '-aey', 'vg0/lv1']);
        assert.equal(before.rc, 5, before.stderr);

        const killedAt = performance.now();
        await bed.kill('A');
        say(`host A killed (QEMU pid ${bed.guests.A.pid}); B retries lvchange -aey vg0/lv1 every ${RETRY_EVERY_MS / 1000} s (io_timeout ${io} s: sanlock host_dead ${hostDeadS} s)`);

        const deadline = killedAt + (hostDeadS + 7 * io + 90) * 1000;
        let refusals = 0;
        let lastRefusedS = 0;
        for (;;) {
          const r = await bed.run('B', ['lvchange', '-aey', 'vg0/lv1']);
          const at = (performance.now() - killedAt) / 1000;
          if (r.rc === 0) {
            say(`B got ex ${at.toFixed(1)} s after A was killed (last refusal at ${lastRefusedS.toFixed(1)} s; ${refusals} refusals, each ${r.ms} ms or so)`);
            assert.ok(at >= renewalFailS, `B got the lock ${at.toFixed(1)} s after A died, before A's host lease could have expired (${renewalFailS} s)`);
            break;
          }
          // Until the lease expires lvmlockd refuses at once, with the ordinary text.
          assert.equal(r.rc, 5, `attempt at ${at.toFixed(1)} s: ${r.stderr}`);
          assert.equal(r.stderr, refusal, `attempt at ${at.toFixed(1)} s`);
          refusals++;
          lastRefusedS = at;
          assert.ok(performance.now() < deadline, `B still refused ${at.toFixed(0)} s after A died (host_dead ${hostDeadS} s)`);
          await sleep(RETRY_EVERY_MS);
        }
        assert.ok(refusals > 0, 'B was never refused after A died');
        const info = await bed.must('B', ['lvmlockctl', '--info']);
        const uuid = (await bed.must('B', ['lvs', '--noheadings', '-o', 'lv_uuid', 'vg0/lv1'])).stdout.trim();
        assert.ok(info.stdout.split('\n').includes(`LK LV ex ${uuid}`), info.stdout);
        const hosts = await bed.must('B', ['sanlock', 'client', 'host_status', '-s', 'lvm_vg0']);
        say('B after the takeover: sanlock client host_status -s lvm_vg0 (host_id, last lease renewal):');
        for (const line of hosts.stdout.trim().split('\n')) say(`  ${line}`);
      } finally {
        await bed.stop();
      }
    });
  }
}
