import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Lvm, LvmCommandError, LvmNameError, dashedUuid, isSharedLockType, type LvmSettings } from '../../src/lvm/lvm.js';
import type { Exec, RunResult } from '../../src/lvm/run.js';

interface Call {
  file: string;
  args: string[];
  timeoutMs: number;
}

type Reply = Partial<RunResult> | ((call: Call) => Partial<RunResult> | Promise<Partial<RunResult>>);

/** An Exec that records every call and answers from `reply`; nothing is run. */
function fakeExec(reply: Reply): { exec: Exec; calls: Call[] } {
  const calls: Call[] = [];
  const exec: Exec = async (file, args, opts) => {
    const call = { file, args: [...args], timeoutMs: opts.timeoutMs };
    calls.push(call);
    const r = typeof reply === 'function' ? await reply(call) : reply;
    return { rc: 0, signal: null, stdout: '', stderr: '', ms: 5, timedOut: false, ...r };
  };
  return { exec, calls };
}

const SETTINGS: LvmSettings = { command: 'lvm', lockctl: 'lvmlockctl', timeoutMs: 60_000, maxParallel: 4 };

function lvmWith(reply: Reply, settings: Partial<LvmSettings> = {}): { lvm: Lvm; calls: Call[] } {
  const { exec, calls } = fakeExec(reply);
  return { lvm: new Lvm(() => ({ ...SETTINGS, ...settings }), exec), calls };
}

const UUID1 = '4kRexJ-iEUz-viN9-S4Cq-epXc-VBwB-kLSrD2';
const UUID2 = 'KNo9qM-O42g-3k3s-sD46-TJn3-ol10-H4Rc1Z';
const UUID3 = 'W55FMq-eZ4B-s3gq-Thhf-LEhQ-rMLi-w50dL3';
const UUID4 = 'vQhUk9-Rxpd-s88O-61fm-KIeI-XsjL-JaN8Ft';

/** lvs JSON in the layout lvm prints (leading spaces, one row per line). */
function lvsJson(rows: Array<Record<string, string>>): string {
  const body = rows.map((r) => `                  ${JSON.stringify(r)}`).join(',\n');
  return `  {\n      "report": [\n          {\n              "lv": [\n${body}\n              ]\n          }\n      ]\n  }\n`;
}

describe('Lvm.change: argument vectors', () => {
  test('ex, sh and off map to -aey, -asy and -an with VG/LV arguments', async () => {
    const { lvm, calls } = lvmWith({});
    const ex = await lvm.change('vg0', ['lv1', 'lv2'], 'ex');
    const sh = await lvm.change('vg0', ['lv1'], 'sh');
    const off = await lvm.change('vg0', ['lv1', 'lv2'], 'off');
    assert.deepEqual(
      calls.map((c) => [c.file, ...c.args]),
      [
        ['lvm', 'lvchange', '-aey', 'vg0/lv1', 'vg0/lv2'],
        ['lvm', 'lvchange', '-asy', 'vg0/lv1'],
        ['lvm', 'lvchange', '-an', 'vg0/lv1', 'vg0/lv2'],
      ],
    );
    assert.deepEqual(ex.argv, ['lvm', 'lvchange', '-aey', 'vg0/lv1', 'vg0/lv2']);
    assert.deepEqual(sh.argv, ['lvm', 'lvchange', '-asy', 'vg0/lv1']);
    assert.deepEqual(off.argv, ['lvm', 'lvchange', '-an', 'vg0/lv1', 'vg0/lv2']);
    for (const r of [ex, sh, off]) {
      assert.equal(r.ok, true);
      assert.equal(r.rc, 0);
      assert.deepEqual(r.failures, []);
    }
  });

  test('the command and timeout come from the settings at call time', async () => {
    let settings: LvmSettings = { ...SETTINGS, command: '/usr/sbin/lvm', timeoutMs: 12_000 };
    const { exec, calls } = fakeExec({});
    const lvm = new Lvm(() => settings, exec);
    await lvm.change('vg0', ['lv1'], 'ex');
    settings = { ...settings, command: '/sbin/lvm', timeoutMs: 30_000 };
    await lvm.change('vg0', ['lv1'], 'ex');
    assert.deepEqual(
      calls.map((c) => [c.file, c.timeoutMs]),
      [
        ['/usr/sbin/lvm', 12_000],
        ['/sbin/lvm', 30_000],
      ],
    );
  });

  test('many LVs of one VG take one process', async () => {
    const { lvm, calls } = lvmWith({});
    const names = Array.from({ length: 40 }, (_, i) => `disk${i}`);
    const r = await lvm.change('vg0', names, 'sh');
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]!.args, ['lvchange', '-asy', ...names.map((n) => `vg0/${n}`)]);
    assert.equal(r.ok, true);
  });

  test('a name given twice is passed once', async () => {
    const { lvm, calls } = lvmWith({});
    await lvm.change('vg0', ['lv1', 'lv1', 'lv2'], 'ex');
    assert.deepEqual(calls[0]!.args, ['lvchange', '-aey', 'vg0/lv1', 'vg0/lv2']);
  });

  test('a partial failure reports only the failed LV, with the stderr', async () => {
    const stderr = '  LV locked by other host: vg0/lv2\n  Failed to lock logical volume vg0/lv2.\n';
    const { lvm } = lvmWith({ rc: 5, stderr, ms: 420 });
    const r = await lvm.change('vg0', ['lv1', 'lv2'], 'ex');
    assert.equal(r.ok, false);
    assert.equal(r.rc, 5);
    assert.equal(r.ms, 420);
    assert.equal(r.stderr, stderr);
    assert.deepEqual(
      r.failures.map((f) => [f.lv, f.cls]),
      [[{ vg: 'vg0', lv: 'lv2' }, 'locked-by-other-host']],
    );
  });

  test('a timeout is a failed change for every LV', async () => {
    const { lvm } = lvmWith({ rc: null, signal: 'SIGTERM', timedOut: true, ms: 60_000 });
    const r = await lvm.change('vg0', ['lv1', 'lv2'], 'sh');
    assert.equal(r.ok, false);
    assert.deepEqual(
      r.failures.map((f) => f.cls),
      ['timeout', 'timeout'],
    );
  });

  test('an empty LV list is a programming error and runs nothing', async () => {
    const { lvm, calls } = lvmWith({});
    await assert.rejects(lvm.change('vg0', [], 'ex'), /no LV given/);
    assert.equal(calls.length, 0);
  });
});

describe('name validation', () => {
  const bad = ['-aey', '--config=x', 'lv 1', 'lv;reboot', '$(reboot)', '`id`', 'a/b', '', '.', '..', 'x'.repeat(128), 'lv\n1'];
  for (const name of bad) {
    test(`LV name ${JSON.stringify(name)} is rejected before anything runs`, async () => {
      const { lvm, calls } = lvmWith({});
      await assert.rejects(lvm.change('vg0', ['ok', name], 'ex'), LvmNameError);
      assert.equal(calls.length, 0);
    });
  }

  test('a bad VG name is rejected for change and for listLvs', async () => {
    const { lvm, calls } = lvmWith({});
    await assert.rejects(lvm.change('-vg', ['lv1'], 'ex'), /invalid VG name "-vg": it starts with "-"/);
    await assert.rejects(lvm.listLvs(['vg0', 'vg 1']), LvmNameError);
    assert.equal(calls.length, 0);
  });

  test('names LVM accepts pass unchanged', async () => {
    const { lvm, calls } = lvmWith({});
    await lvm.change('vg_0.data+x', ['lv-1_a.b+c', '.hidden', 'x'.repeat(127)], 'ex');
    assert.deepEqual(calls[0]!.args.slice(2), ['vg_0.data+x/lv-1_a.b+c', 'vg_0.data+x/.hidden', `vg_0.data+x/${'x'.repeat(127)}`]);
  });
});

describe('Lvm.listVgs and listLvs', () => {
  test('listVgs runs vgs with a JSON report and reads names and lock types', async () => {
    const stdout = JSON.stringify({
      report: [
        {
          vg: [
            { vg_name: 'vg0', vg_lock_type: 'sanlock' },
            { vg_name: 'local', vg_lock_type: '' },
            { vg_name: 'vgd', vg_lock_type: 'dlm' },
          ],
        },
      ],
    });
    const { lvm, calls } = lvmWith({ stdout });
    const vgs = await lvm.listVgs();
    assert.deepEqual(calls[0]!.args, ['vgs', '--reportformat', 'json', '-o', 'vg_name,vg_lock_type']);
    assert.deepEqual(vgs, [
      { name: 'vg0', lockType: 'sanlock' },
      { name: 'local', lockType: '' },
      { name: 'vgd', lockType: 'dlm' },
    ]);
  });

  test('only sanlock and dlm VGs count as shared', () => {
    assert.deepEqual(
      ['sanlock', 'dlm', 'none', '', 'lvmlockd'].filter(isSharedLockType),
      ['sanlock', 'dlm'],
    );
  });

  test('listLvs names the VGs and reads every field', async () => {
    const stdout = lvsJson([
      { vg_name: 'vg0', lv_name: 'lv1', lv_uuid: UUID1, lv_active_locally: 'active locally', segtype: 'linear' },
      { vg_name: 'vg1', lv_name: 'lv2', lv_uuid: UUID2, lv_active_locally: '', segtype: 'striped' },
    ]);
    const { lvm, calls } = lvmWith({ stdout });
    const lvs = await lvm.listLvs(['vg0', 'vg1']);
    assert.deepEqual(calls[0]!.args, [
      'lvs',
      '--reportformat',
      'json',
      '-o',
      'vg_name,lv_name,lv_uuid,lv_active_locally,segtype',
      'vg0',
      'vg1',
    ]);
    assert.deepEqual(lvs, [
      { vg: 'vg0', lv: 'lv1', uuid: UUID1, activeLocally: true, segtype: 'linear' },
      { vg: 'vg1', lv: 'lv2', uuid: UUID2, activeLocally: false, segtype: 'striped' },
    ]);
  });

  test('listLvs of no VG runs nothing (lvs without a VG would list them all)', async () => {
    const { lvm, calls } = lvmWith({});
    assert.deepEqual(await lvm.listLvs([]), []);
    assert.equal(calls.length, 0);
  });

  test('a report with other sections (a log) still yields the rows', async () => {
    const stdout = JSON.stringify({
      report: [{ lv: [{ vg_name: 'vg0', lv_name: 'a', lv_uuid: UUID1, lv_active_locally: '', segtype: 'linear' }] }],
      log: [{ log_type: 'status', log_ret_code: '1' }],
    });
    const { lvm } = lvmWith({ stdout });
    assert.equal((await lvm.listLvs(['vg0'])).length, 1);
  });

  test('unparsable output is an LvmCommandError that quotes it', async () => {
    const { lvm } = lvmWith({ stdout: '  LV   VG  Attr\n  lv1  vg0 -wi-a-----\n' });
    await assert.rejects(lvm.listLvs(['vg0']), (err: unknown) => {
      assert.ok(err instanceof LvmCommandError);
      assert.match(err.message, /^lvm lvs: output is not a JSON report: "LV VG Attr lv1 vg0 -wi-a-----"$/);
      return true;
    });
  });

  test('JSON without a report list is an LvmCommandError', async () => {
    const { lvm } = lvmWith({ stdout: '{"reports": []}' });
    await assert.rejects(lvm.listVgs(), /lvm vgs: JSON output has no "report" list/);
  });

  test('a row without a name is an LvmCommandError', async () => {
    const { lvm } = lvmWith({ stdout: '{"report":[{"vg":[{"vg_lock_type":"sanlock"}]}]}' });
    await assert.rejects(lvm.listVgs(), /lacks a usable "vg_name"/);
  });

  test('a failed read names the command and the first error line', async () => {
    const { lvm } = lvmWith({ rc: 5, stderr: '  Volume group "vgx" not found\n  Cannot process volume group vgx\n' });
    await assert.rejects(lvm.listLvs(['vgx']), (err: unknown) => {
      assert.ok(err instanceof LvmCommandError);
      assert.equal(err.message, 'lvm lvs: failed with exit code 5: Volume group "vgx" not found');
      assert.equal(err.command, 'lvm lvs');
      return true;
    });
  });

  test('a timed-out read says so', async () => {
    const { lvm } = lvmWith({ rc: null, signal: 'SIGTERM', timedOut: true, ms: 60_000 });
    await assert.rejects(lvm.listVgs(), { message: 'lvm vgs: timed out after 60s and was killed' });
  });
});

describe('Lvm.lockModes', () => {
  test('reads only LK LV lines, by dashed UUID (verbatim lvmlockctl --info)', async () => {
    const stdout = [
      `VG vg0 lock_type=sanlock ${UUID4}`,
      'LS sanlock lvm_vg0',
      'LK VG un ver 4',
      'LK GL un ver 0',
      `LK LV sh ${UUID1}`,
      `LK LV un ${UUID2}`,
      'VG vg1 lock_type=sanlock abcdef-ghij-klmn-opqr-stuv-wxyz-012345',
      'LS sanlock lvm_vg1',
      'LK VG ex ver 7 pid 311 (lvchange)',
      `LK LV ex ${UUID3}`,
      'LW LV ex zzzzzz-zzzz-zzzz-zzzz-zzzz-zzzz-zzzzzz',
      'PR something',
      '',
    ].join('\n');
    const { lvm, calls } = lvmWith({ stdout });
    const modes = await lvm.lockModes();
    assert.deepEqual(calls[0], { file: 'lvmlockctl', args: ['--info'], timeoutMs: 60_000 });
    assert.deepEqual(
      [...modes.entries()],
      [
        [UUID1, 'sh'],
        [UUID2, 'un'],
        [UUID3, 'ex'],
      ],
    );
  });

  test('no lock lines is an empty map', async () => {
    const { lvm } = lvmWith({ stdout: '' });
    assert.equal((await lvm.lockModes()).size, 0);
  });

  test('UUIDs without dashes are put in the dashed form lvs uses', async () => {
    const { lvm } = lvmWith({ stdout: `LK LV ex ${UUID1.replace(/-/g, '')}\n` });
    assert.deepEqual([...(await lvm.lockModes()).keys()], [UUID1]);
    assert.equal(dashedUuid(UUID1.replace(/-/g, '')), UUID1);
  });

  test('lvmlockd unreachable is an error, never an empty map', async () => {
    const { lvm } = lvmWith({ rc: 255, stderr: 'Cannot connect to lvmlockd.\n' });
    await assert.rejects(lvm.lockModes(), (err: unknown) => {
      assert.ok(err instanceof LvmCommandError);
      assert.equal(err.message, 'lvmlockctl --info: failed with exit code 255: Cannot connect to lvmlockd.');
      return true;
    });
  });

  // lvmlockctl takes the dump on an abstract socket of a fixed name: two at once collide (seen
  // on real lvm2 2.03.16 as "socket error -98", exit 158).
  test('another lvmlockctl holding the dump socket: asked again, then read', async () => {
    let n = 0;
    const { lvm, calls } = lvmWith(() => (++n < 3 ? { rc: 158, stderr: 'socket error -98\n' } : { stdout: `LK LV ex ${UUID1}\n` }));
    assert.deepEqual([...(await lvm.lockModes()).entries()], [[UUID1, 'ex']]);
    assert.equal(calls.length, 3);
  });

  test('a dump socket that stays taken is an error naming it, after a few tries', async () => {
    const { lvm, calls } = lvmWith({ rc: 158, stderr: 'socket error -98\n' });
    await assert.rejects(lvm.lockModes(), /lvmlockctl --info: failed with exit code 158: socket error -98/);
    assert.equal(calls.length, 5);
  });

  test('an unknown mode is an error rather than a guess', async () => {
    const { lvm } = lvmWith({ stdout: `LK LV pr ${UUID1}\n` });
    await assert.rejects(lvm.lockModes(), /unknown lock mode/);
  });
});

describe('Lvm.heldLocks', () => {
  const lvsRows: Array<Record<string, string>> = [
    // As on lvm 2.03.16 in state S2: lvs says "active exclusively" though the lock is sh.
    {
      vg_name: 'vg0',
      lv_name: 'lv1',
      lv_uuid: UUID1,
      lv_active_locally: 'active locally',
      lv_active_exclusively: 'active exclusively',
      segtype: 'linear',
    },
    { vg_name: 'vg0', lv_name: 'lv2', lv_uuid: UUID2, lv_active_locally: 'active locally', segtype: 'linear' },
    { vg_name: 'vg0', lv_name: 'lv3', lv_uuid: UUID3, lv_active_locally: '', segtype: 'linear' },
    { vg_name: 'vg0', lv_name: 'lv4', lv_uuid: UUID4, lv_active_locally: '', segtype: 'linear' },
  ];
  const info = [`LK LV sh ${UUID1}`, `LK LV ex ${UUID2}`, `LK LV un ${UUID3}`, 'LK LV ex OTHERV-G000-0000-0000-0000-0000-000000'].join(
    '\n',
  );
  const reply = (call: Call): Partial<RunResult> =>
    call.file === 'lvmlockctl' ? { stdout: info } : { stdout: lvsJson(lvsRows) };

  test('names from lvs, modes from lvmlockctl: sh stays sh although lvs says "active exclusively"', async () => {
    const { lvm, calls } = lvmWith(reply);
    const held = await lvm.heldLocks(['vg0']);
    assert.deepEqual(
      [...held.entries()],
      [
        ['vg0/lv1', 'sh'],
        ['vg0/lv2', 'ex'],
      ],
    );
    assert.deepEqual(calls.map((c) => c.file).sort(), ['lvm', 'lvmlockctl']);
  });

  test('no VG, no command', async () => {
    const { lvm, calls } = lvmWith(reply);
    assert.equal((await lvm.heldLocks([])).size, 0);
    assert.equal(calls.length, 0);
  });

  test('if lvmlockctl fails, heldLocks fails', async () => {
    const { lvm } = lvmWith((call) =>
      call.file === 'lvmlockctl' ? { rc: 255, stderr: 'Cannot connect to lvmlockd.\n' } : { stdout: lvsJson(lvsRows) },
    );
    await assert.rejects(lvm.heldLocks(['vg0']), LvmCommandError);
  });
});

describe('Lvm.resolvePath', () => {
  test('/dev/mapper names with doubled dashes resolve to VG and LV', async () => {
    const stdout = lvsJson([{ vg_name: 'vg-a', lv_name: 'lv-b' }]);
    const { lvm, calls } = lvmWith({ stdout });
    assert.deepEqual(await lvm.resolvePath('/dev/mapper/vg--a-lv--b'), { vg: 'vg-a', lv: 'lv-b' });
    assert.deepEqual(calls[0]!.args, ['lvs', '--reportformat', 'json', '-o', 'vg_name,lv_name', '/dev/mapper/vg--a-lv--b']);
  });

  test('/dev/VG/LV resolves', async () => {
    const { lvm } = lvmWith({ stdout: lvsJson([{ vg_name: 'vg0', lv_name: 'lv1' }]) });
    assert.deepEqual(await lvm.resolvePath('/dev/vg0/lv1'), { vg: 'vg0', lv: 'lv1' });
  });

  test('a VG path is not an LV even when the VG has one LV', async () => {
    const { lvm } = lvmWith({ stdout: lvsJson([{ vg_name: 'vg0', lv_name: 'lv1' }]) });
    assert.equal(await lvm.resolvePath('/dev/vg0'), undefined);
  });

  test('several rows are not one LV', async () => {
    const { lvm } = lvmWith({
      stdout: lvsJson([
        { vg_name: 'vg0', lv_name: 'lv1' },
        { vg_name: 'vg0', lv_name: 'lv2' },
      ]),
    });
    assert.equal(await lvm.resolvePath('/dev/vg0/lv1'), undefined);
  });

  test('"not found" from LVM means not an LV', async () => {
    const { lvm } = lvmWith({ rc: 5, stderr: '  Volume group "sda" not found\n  Cannot process volume group sda\n' });
    assert.equal(await lvm.resolvePath('/dev/sda'), undefined);
    const other = lvmWith({ rc: 5, stderr: '  "/srv/disk.img": Invalid path for Logical Volume.\n' });
    assert.equal(await other.lvm.resolvePath('/srv/disk.img'), undefined);
  });

  test('other failures are errors, not "not an LV"', async () => {
    const timedOut = lvmWith({ rc: null, signal: 'SIGTERM', timedOut: true });
    await assert.rejects(timedOut.lvm.resolvePath('/dev/vg0/lv1'), LvmCommandError);
    const broken = lvmWith({ rc: 5, stderr: '  Global lock failed: check that lvmlockd is running.\n' });
    await assert.rejects(broken.lvm.resolvePath('/dev/vg0/lv1'), /lvmlockd is running/);
  });

  test('a relative path or an option is refused before running', async () => {
    const { lvm, calls } = lvmWith({});
    await assert.rejects(lvm.resolvePath('-a'), LvmNameError);
    await assert.rejects(lvm.resolvePath('vg0/lv1'), LvmNameError);
    assert.equal(calls.length, 0);
  });
});

describe('concurrency bound', () => {
  test('20 concurrent calls never run more than maxParallel processes', async () => {
    let running = 0;
    let most = 0;
    const { lvm, calls } = lvmWith(
      async () => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 10));
        running -= 1;
        return {};
      },
      { maxParallel: 3 },
    );
    const work = Array.from({ length: 20 }, (_, i) =>
      // Distinct VGs: changes of one VG and mode would be merged into fewer processes.
      i % 2 === 0 ? lvm.change(`vg${i}`, ['lv1'], 'ex') : lvm.listVgs().catch(() => undefined),
    );
    await Promise.all(work);
    assert.equal(calls.length, 20);
    assert.equal(most, 3);
    assert.equal(lvm.limiter.peak, 3);
    assert.equal(lvm.limiter.active, 0);
  });

  test('changes of one VG and mode that wait for a slot are merged, and each caller gets only its own failures', async () => {
    const { lvm, calls } = lvmWith(
      async ({ args }: Call) => {
        await new Promise((r) => setTimeout(r, 20));
        // lv3 is held by another host; everything else succeeds.
        return args.includes('vg0/lv3')
          ? { rc: 5, stderr: '  LV locked by other host: vg0/lv3\n  Failed to lock logical volume vg0/lv3.\n' }
          : {};
      },
      { maxParallel: 1 },
    );
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => lvm.change('vg0', [`lv${i}`], 'ex')));
    const lvchanges = calls.filter((c) => c.args[0] === 'lvchange');
    assert.ok(lvchanges.length <= 2, `expected at most 2 lvchange processes, got ${lvchanges.length}`);
    assert.deepEqual(
      lvchanges.flatMap((c) => c.args.slice(2)).sort(),
      Array.from({ length: 8 }, (_, i) => `vg0/lv${i}`).sort(),
    );
    for (const [i, r] of results.entries()) {
      if (i === 3) {
        assert.equal(r.ok, false);
        assert.deepEqual(r.failures.map((f) => [f.lv?.lv, f.cls]), [['lv3', 'locked-by-other-host']]);
      } else {
        assert.equal(r.ok, true, `lv${i}: ${JSON.stringify(r.failures)}`);
      }
    }
    // Different modes are never merged.
    await Promise.all([lvm.change('vg0', ['a'], 'ex'), lvm.change('vg0', ['b'], 'sh')]);
    assert.ok(calls.slice(-2).every((c) => c.args.length === 3));
  });
});
