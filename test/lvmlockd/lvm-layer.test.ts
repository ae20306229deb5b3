/**
 * The daemon's own LVM layer (src/lvm/lvm.ts, unchanged) against real lvm2 + lvmlockd + sanlock:
 * its commands run inside guest A or B through the test bed's channel instead of locally.
 * The tests run in order on one test bed and build on each other, like one domain's life:
 * start on A, live migration to B, then the refusals the daemon has to classify.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LockMode } from '../../src/locks/lv.js';
import { Lvm, type ChangeResult, type LvmSettings } from '../../src/lvm/lvm.js';
import { ioTimeoutFromEnv, prepare, say, skipLoudly } from './prepare.js';
import { HOSTS, Testbed, type Host } from './testbed.js';

const TITLE = "the daemon's Lvm class on real lvmlockd + sanlock (two QEMU guests)";
const VG = 'vg0';
const SETTINGS: LvmSettings = { command: 'lvm', lockctl: 'lvmlockctl', timeoutMs: 60_000, maxParallel: 2 };

const prepared = await prepare();

if ('skip' in prepared) {
  skipLoudly(TITLE, prepared.skip);
} else {
  describe(TITLE, () => {
    let bed: Testbed;
    const lvm = {} as Record<Host, Lvm>;
    const started = performance.now();

    before(async () => {
      bed = await Testbed.start(prepared.image, prepared.tools, { label: 'lvm-layer', ioTimeoutSec: ioTimeoutFromEnv(), log: say });
      for (const host of HOSTS) lvm[host] = new Lvm(() => SETTINGS, bed.exec(host));
    });

    after(async () => {
      if (!bed) return;
      say(`lvm-layer: ${bed.journal.length} guest commands in ${((performance.now() - started) / 1000).toFixed(0)} s; guest times by command:`);
      for (const line of bed.summary()) say(`  ${line}`);
      await bed.stop();
    });

    const held = async (host: Host): Promise<Record<string, LockMode>> => Object.fromEntries(await lvm[host].heldLocks([VG]));

    const expectOk = (r: ChangeResult, what: string): void => {
      assert.equal(r.ok, true, `${what}: ${r.argv.join(' ')} failed (rc ${r.rc}): ${r.stderr}`);
      assert.deepEqual(r.failures, []);
      assert.equal(r.rc, 0);
      say(`${what}: ${r.argv.join(' ')} ok in ${r.ms} ms (guest)`);
    };

    /** Open count of the LV's dm device on a host, from dmsetup. */
    const openCount = async (host: Host, lv: string): Promise<number> => {
      const r = await bed.must(host, ['dmsetup', 'info', '-c', '--noheadings', '-o', 'open', `${VG}-${lv}`]);
      return Number(r.stdout.trim());
    };

    test('after lvcreate of a thin LV the creating host still holds the pool lock ex, with pool and thin LV inactive', async () => {
      assert.deepEqual(await held('A'), { [`${VG}/pool0`]: 'ex' });
      assert.deepEqual(await held('B'), {});
      const lvs = await lvm.A.listLvs([VG]);
      for (const name of ['pool0', 'thin1']) assert.equal(lvs.find((l) => l.lv === name)?.activeLocally, false, `${name} active on A`);
      await bed.reset();
      assert.deepEqual(await held('A'), {});
    });

    test('listVgs, listLvs and resolvePath read the real lvm output', async () => {
      assert.deepEqual((await lvm.A.listVgs()).find((v) => v.name === VG), { name: VG, lockType: 'sanlock' });
      const lvs = await lvm.B.listLvs([VG]);
      assert.deepEqual(lvs.map((l) => l.lv).sort(), ['lv1', 'lv2', 'pool0', 'thin1']);
      assert.equal(lvs.find((l) => l.lv === 'thin1')?.segtype, 'thin');
      assert.equal(lvs.find((l) => l.lv === 'lv1')?.segtype, 'linear');
      for (const l of lvs) assert.match(l.uuid, /^[A-Za-z0-9]{6}(-[A-Za-z0-9]{4}){5}-[A-Za-z0-9]{6}$/);
      assert.deepEqual(await lvm.A.resolvePath(`/dev/${VG}/lv1`), { vg: VG, lv: 'lv1' });
      assert.deepEqual(await lvm.A.resolvePath(`/dev/mapper/${VG}-lv2`), { vg: VG, lv: 'lv2' });
      assert.equal(await lvm.A.resolvePath(`/dev/${VG}/nosuchlv`), undefined);
      assert.equal(await lvm.A.resolvePath('/dev/nosuchvg/lv1'), undefined);
    });

    test('start on A: one lvchange -aey for lv1 and lv2; heldLocks reads ex for both, B holds nothing', async () => {
      const r = await lvm.A.change(VG, ['lv1', 'lv2'], 'ex');
      expectOk(r, 'start A ex');
      assert.deepEqual(r.argv, ['lvm', 'lvchange', '-aey', `${VG}/lv1`, `${VG}/lv2`]);
      assert.deepEqual(await held('A'), { [`${VG}/lv1`]: 'ex', [`${VG}/lv2`]: 'ex' });
      assert.deepEqual(await held('B'), {});
      for (const lv of ['lv1', 'lv2']) await bed.open('A', `${VG}/${lv}`);
    });

    test('migrate, source A: ex -> sh in place, LVs stay open; lvs says "active exclusively" but heldLocks says sh', async () => {
      expectOk(await lvm.A.change(VG, ['lv1', 'lv2'], 'sh'), 'demote A sh');
      assert.deepEqual(await held('A'), { [`${VG}/lv1`]: 'sh', [`${VG}/lv2`]: 'sh' });
      for (const lv of ['lv1', 'lv2']) assert.equal(await openCount('A', lv), 1, `${lv} still open on A`);
      // lvm 2.03.16 cannot tell sh from ex: the daemon must not trust lvs for the mode.
      const lvs = await bed.must('A', ['lvs', '--reportformat', 'json', '-o', 'lv_name,lv_active_exclusively', `${VG}/lv1`]);
      assert.match(lvs.stdout, /"lv_active_exclusively":"active exclusively"/);
      assert.equal((await lvm.A.listLvs([VG])).find((l) => l.lv === 'lv1')?.activeLocally, true);
    });

    test('migrate, destination B: sh while A holds sh', async () => {
      expectOk(await lvm.B.change(VG, ['lv1', 'lv2'], 'sh'), 'migrate B sh');
      assert.deepEqual(await held('B'), { [`${VG}/lv1`]: 'sh', [`${VG}/lv2`]: 'sh' });
      assert.deepEqual(await held('A'), { [`${VG}/lv1`]: 'sh', [`${VG}/lv2`]: 'sh' });
      for (const lv of ['lv1', 'lv2']) await bed.open('B', `${VG}/${lv}`);
    });

    test('migrate: B cannot promote while A still holds sh (locked-by-other-host), and keeps sh', async () => {
      const r = await lvm.B.change(VG, ['lv1', 'lv2'], 'ex');
      assert.equal(r.ok, false);
      assert.equal(r.rc, 5);
      assert.deepEqual(
        r.failures.map((f) => [f.lv && `${f.lv.vg}/${f.lv.lv}`, f.cls]),
        [[`${VG}/lv1`, 'locked-by-other-host'], [`${VG}/lv2`, 'locked-by-other-host']],
      );
      assert.deepEqual(await held('B'), { [`${VG}/lv1`]: 'sh', [`${VG}/lv2`]: 'sh' });
    });

    test('migrate, source A after switchover: off releases both', async () => {
      for (const lv of ['lv1', 'lv2']) await bed.close('A', `${VG}/${lv}`);
      expectOk(await lvm.A.change(VG, ['lv1', 'lv2'], 'off'), 'release A off');
      assert.deepEqual(await held('A'), {});
      assert.deepEqual(
        (await lvm.A.listLvs([VG])).filter((l) => l.activeLocally).map((l) => l.lv),
        [],
      );
    });

    test('migrate, destination B: sh -> ex in place, LVs stay open', async () => {
      expectOk(await lvm.B.change(VG, ['lv1', 'lv2'], 'ex'), 'promote B ex');
      assert.deepEqual(await held('B'), { [`${VG}/lv1`]: 'ex', [`${VG}/lv2`]: 'ex' });
      for (const lv of ['lv1', 'lv2']) assert.equal(await openCount('B', lv), 1, `${lv} still open on B`);
    });

    test('locked-by-other-host: A asks ex, then sh, of LVs B holds ex (sh is refused only after about 5 s)', async () => {
      const ex = await lvm.A.change(VG, ['lv1', 'lv2'], 'ex');
      assert.equal(ex.ok, false);
      assert.equal(ex.rc, 5);
      assert.deepEqual(
        ex.failures.map((f) => [f.lv && `${f.lv.vg}/${f.lv.lv}`, f.cls, f.message]),
        ['lv1', 'lv2'].map((lv) => [`${VG}/${lv}`, 'locked-by-other-host', `LV locked by other host: ${VG}/${lv}\nFailed to lock logical volume ${VG}/${lv}.`]),
      );
      const sh = await lvm.A.change(VG, ['lv1'], 'sh');
      assert.deepEqual(sh.failures.map((f) => f.cls), ['locked-by-other-host']);
      say(`refusals on A: -aey of 2 LVs ${ex.ms} ms, -asy of 1 LV ${sh.ms} ms (guest)`);
      assert.ok(sh.ms >= 3000, `a refused -asy took ${sh.ms} ms; measured before: about 5.4 s (lvmlockd retries sh)`);
      assert.deepEqual(await held('A'), {});
      assert.deepEqual(await held('B'), { [`${VG}/lv1`]: 'ex', [`${VG}/lv2`]: 'ex' });
    });

    test('in-use: B deactivates lv1 (open) and lv2 (closed) in one command: lv1 in-use and still ex, lv2 released', async () => {
      await bed.close('B', `${VG}/lv2`);
      const r = await lvm.B.change(VG, ['lv1', 'lv2'], 'off');
      assert.equal(r.ok, false);
      assert.equal(r.rc, 5);
      assert.deepEqual(
        r.failures.map((f) => [f.lv && `${f.lv.vg}/${f.lv.lv}`, f.cls, f.message]),
        [[`${VG}/lv1`, 'in-use', `Logical volume ${VG}/lv1 in use.`]],
      );
      say(`in-use refusal on B: ${r.ms} ms (guest)`);
      assert.deepEqual(await held('B'), { [`${VG}/lv1`]: 'ex' });
      await bed.close('B', `${VG}/lv1`);
      expectOk(await lvm.B.change(VG, ['lv1'], 'off'), 'release B off');
      assert.deepEqual(await held('B'), {});
    });

    test('sh-not-supported for a thin LV; ex locks its pool, and the other host is refused naming the thin LV', async () => {
      const sh = await lvm.A.change(VG, ['thin1'], 'sh');
      assert.equal(sh.ok, false);
      assert.deepEqual(
        sh.failures.map((f) => [f.lv && `${f.lv.vg}/${f.lv.lv}`, f.cls]),
        [[`${VG}/thin1`, 'sh-not-supported']],
      );
      assert.match(sh.failures[0]!.message, /^Shared activation not compatible with LV type thin-pool of vg0\/pool0$/m);
      expectOk(await lvm.A.change(VG, ['thin1'], 'ex'), 'thin A ex');
      assert.deepEqual(await held('A'), { [`${VG}/pool0`]: 'ex' });
      const other = await lvm.B.change(VG, ['thin1'], 'ex');
      assert.deepEqual(
        other.failures.map((f) => [f.lv && `${f.lv.vg}/${f.lv.lv}`, f.cls]),
        [[`${VG}/thin1`, 'locked-by-other-host']],
      );
      expectOk(await lvm.A.change(VG, ['thin1'], 'off'), 'thin A off');
      // Deactivating the thin LV releases the pool's lock too.
      assert.deepEqual(await held('A'), {});
    });

    // Last: B's lockspace stays stopped (restarting it would cost about 25 s).
    test('lockspace-inactive: B stops the lockspace of a VG with nothing active there, then asks for ex and sh', async () => {
      assert.deepEqual(await held('B'), {});
      await bed.must('B', ['vgchange', '--lockstop', VG]);
      assert.equal(await bed.lockspaceStarted('B'), false);
      for (const mode of ['ex', 'sh'] as const) {
        const r = await lvm.B.change(VG, ['lv1'], mode);
        assert.equal(r.ok, false);
        assert.equal(r.rc, 5);
        say(`B ${mode} without lockspace: rc ${r.rc}, stderr ${JSON.stringify(r.stderr)} -> ${r.failures.map((f) => f.cls).join(',')}`);
        assert.deepEqual(
          r.failures.map((f) => [f.lv && `${f.lv.vg}/${f.lv.lv}`, f.cls]),
          [[`${VG}/lv1`, 'lockspace-inactive']],
        );
      }
    });
  });
}
