import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyFailure, describeFailure, isRetryable, type LvmErrorClass } from '../../src/lvm/errors.js';
import type { RunResult } from '../../src/lvm/run.js';
import type { LvRef } from '../../src/locks/lv.js';

function result(rc: number | null, stderr: string, extra: Partial<RunResult> = {}): RunResult {
  return { rc, signal: null, stdout: '', stderr, ms: 420, timedOut: false, ...extra };
}

const lv1: LvRef = { vg: 'vg0', lv: 'lv1' };
const lv2: LvRef = { vg: 'vg0', lv: 'lv2' };
const lv3: LvRef = { vg: 'vg0', lv: 'lv3' };

describe('classifyFailure: single texts from lvmlockd and lvm', () => {
  const cases: Array<{ name: string; stderr: string; ref: LvRef; cls: LvmErrorClass }> = [
    {
      name: 'lock refused (E1, verbatim from lvm 2.03.16)',
      stderr: '  LV locked by other host: vg0/lv1\n  Failed to lock logical volume vg0/lv1.\n',
      ref: lv1,
      cls: 'locked-by-other-host',
    },
    { name: 'deactivation of an open LV (E2)', stderr: '  Logical volume vg0/lv1 in use.\n', ref: lv1, cls: 'in-use' },
    {
      name: 'lockspace not started',
      stderr: '  LV vg0/lv1 lock failed: lockspace is inactive\n  Failed to lock logical volume vg0/lv1.\n',
      ref: lv1,
      cls: 'lockspace-inactive',
    },
    {
      name: 'orphan lock',
      stderr: '  LV vg0/lv1 lock failed: orphan lock needs to be adopted.\n  Failed to lock logical volume vg0/lv1.\n',
      ref: lv1,
      cls: 'orphan-lock',
    },
    {
      name: 'lease storage failed',
      stderr: '  LV vg0/lv1 lock failed: storage failed for sanlock leases\n',
      ref: lv1,
      cls: 'lease-storage',
    },
    {
      name: 'lease storage errors',
      stderr: '  LV vg0/lv1 lock failed: storage errors for sanlock leases\n',
      ref: lv1,
      cls: 'lease-storage',
    },
    { name: 'sanlock io timeout', stderr: '  LV vg0/lv1 lock failed: io timeout.\n', ref: lv1, cls: 'lease-storage' },
    {
      name: 'lease needs repair',
      stderr: '  LV vg0/lv1 lock failed: sanlock lease needs repair.\n',
      ref: lv1,
      cls: 'lease-storage',
    },
    { name: 'other lvmlockd error', stderr: '  LV vg0/lv1 lock failed: error 22\n', ref: lv1, cls: 'failed' },
    {
      name: 'incompatible mode',
      stderr: '  LV is already locked with incompatible mode: vg0/lv1\n  Failed to lock logical volume vg0/lv1.\n',
      ref: lv1,
      cls: 'incompatible-mode',
    },
    {
      name: 'shared activation of a thin LV',
      stderr: '  Shared activation not compatible with LV type thin of vg0/thin1\n  Failed to lock logical volume vg0/thin1.\n',
      ref: { vg: 'vg0', lv: 'thin1' },
      cls: 'sh-not-supported',
    },
    {
      name: 'unknown LV',
      stderr: '  Failed to find logical volume "vg0/nope"\n',
      ref: { vg: 'vg0', lv: 'nope' },
      cls: 'lv-not-found',
    },
    {
      name: 'unknown VG',
      stderr: '  Volume group "vgx" not found\n  Cannot process volume group vgx\n',
      ref: { vg: 'vgx', lv: 'lv1' },
      cls: 'vg-not-found',
    },
    {
      name: 'VG lock held by another host',
      stderr: '  VG vg0 lock failed: held by other host\n',
      ref: lv1,
      cls: 'vg-lock-failed',
    },
  ];

  for (const c of cases) {
    test(c.name, () => {
      const failures = classifyFailure(result(5, c.stderr), [c.ref]);
      assert.equal(failures.length, 1);
      const [f] = failures;
      assert.deepEqual(f!.lv, c.ref);
      assert.equal(f!.cls, c.cls);
      // The message is lvm's own text, trimmed, warnings excluded.
      const expected = c.stderr
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.length > 0)
        .join('\n');
      assert.equal(f!.message, expected);
      assert.equal(f!.hostId, undefined);
    });
  }
});

describe('classifyFailure: host_id suffix (lvm >= 2.03.33)', () => {
  test('the holder host_id is extracted and shown', () => {
    const stderr = '  LV locked by other host: vg0/lv1 (host_id 2)\n  Failed to lock logical volume vg0/lv1.\n';
    const [f, ...rest] = classifyFailure(result(5, stderr), [lv1]);
    assert.equal(rest.length, 0);
    assert.equal(f!.cls, 'locked-by-other-host');
    assert.equal(f!.hostId, 2);
    assert.equal(describeFailure(f!), 'vg0/lv1: locked by another host (host_id 2)');
  });

  test('the VG lock message carries a host_id too', () => {
    const [f] = classifyFailure(result(5, '  VG vg0 lock failed: held by other host (host_id 17)\n'), [lv1]);
    assert.equal(f!.cls, 'vg-lock-failed');
    assert.equal(f!.hostId, 17);
  });
});

describe('classifyFailure: several LVs in one command', () => {
  test('only the LV that lvm names failed; the others succeeded', () => {
    const stderr = '  LV locked by other host: vg0/lv2\n  Failed to lock logical volume vg0/lv2.\n';
    const failures = classifyFailure(result(5, stderr), [lv1, lv2, lv3]);
    assert.deepEqual(
      failures.map((f) => [f.lv, f.cls]),
      [[lv2, 'locked-by-other-host']],
    );
  });

  test('each LV gets its own reason', () => {
    const stderr = [
      '  LV locked by other host: vg0/lv1 (host_id 3)',
      '  Failed to lock logical volume vg0/lv1.',
      '  WARNING: This metadata update is NOT backed up.',
      '  LV vg0/lv3 lock failed: lockspace is inactive',
      '  Failed to lock logical volume vg0/lv3.',
    ].join('\n');
    const failures = classifyFailure(result(5, stderr), [lv1, lv2, lv3]);
    assert.deepEqual(
      failures.map((f) => ({ key: `${f.lv!.vg}/${f.lv!.lv}`, cls: f.cls, hostId: f.hostId })),
      [
        { key: 'vg0/lv1', cls: 'locked-by-other-host', hostId: 3 },
        { key: 'vg0/lv3', cls: 'lockspace-inactive', hostId: undefined },
      ],
    );
    assert.equal(failures[1]!.message, 'LV vg0/lv3 lock failed: lockspace is inactive\nFailed to lock logical volume vg0/lv3.');
  });

  test('a name that is a prefix of another is not confused with it', () => {
    const lv10: LvRef = { vg: 'vg0', lv: 'lv10' };
    const stderr = '  LV locked by other host: vg0/lv10\n  Failed to lock logical volume vg0/lv10.\n';
    const failures = classifyFailure(result(5, stderr), [lv1, lv10]);
    assert.deepEqual(
      failures.map((f) => f.lv),
      [lv10],
    );
  });

  test('an LV name ending in a dot keeps its dot; the final dot of the verdict line is punctuation', () => {
    const dotted: LvRef = { vg: 'vg0', lv: 'lv.' };
    const stderr = '  LV locked by other host: vg0/lv.\n  Failed to lock logical volume vg0/lv..\n';
    const failures = classifyFailure(result(5, stderr), [dotted, lv1]);
    assert.deepEqual(
      failures.map((f) => [f.lv, f.cls, f.message.split('\n').length]),
      [[dotted, 'locked-by-other-host', 2]],
    );
  });

  test('a reason naming a thin pool is joined to the LV of the verdict line that follows', () => {
    const thin: LvRef = { vg: 'vg0', lv: 'thin1' };
    const stderr = [
      '  Shared activation not compatible with LV type thin-pool of vg0/pool0',
      '  Failed to lock logical volume vg0/thin1.',
    ].join('\n');
    const failures = classifyFailure(result(5, stderr), [thin, lv2]);
    assert.equal(failures.length, 1);
    assert.deepEqual(failures[0]!.lv, thin);
    assert.equal(failures[0]!.cls, 'sh-not-supported');
    assert.match(failures[0]!.message, /pool0[\s\S]*thin1/);
  });

  test('a VG-wide failure applies to every requested LV of that VG only', () => {
    const other: LvRef = { vg: 'vg1', lv: 'a' };
    const failures = classifyFailure(result(5, '  VG vg0 lock failed: held by other host\n'), [lv1, lv2, other]);
    assert.deepEqual(
      failures.map((f) => [f.lv, f.cls]),
      [
        [lv1, 'vg-lock-failed'],
        [lv2, 'vg-lock-failed'],
      ],
    );
  });

  test('an unknown line naming one LV fails only that LV', () => {
    const failures = classifyFailure(result(5, '  device-mapper: reload ioctl failed for vg0/lv2: Invalid argument\n'), [
      lv1,
      lv2,
    ]);
    assert.deepEqual(
      failures.map((f) => [f.lv, f.cls]),
      [[lv2, 'failed']],
    );
  });

  test('a line that names no requested LV makes every not yet failed LV failed', () => {
    const stderr = '  LV locked by other host: vg0/lv1\n  Failed to lock logical volume vg0/lv1.\n  Internal error: something odd.\n';
    const failures = classifyFailure(result(5, stderr), [lv1, lv2]);
    assert.deepEqual(
      failures.map((f) => [f.lv, f.cls, f.message]),
      [
        [lv1, 'locked-by-other-host', 'LV locked by other host: vg0/lv1\nFailed to lock logical volume vg0/lv1.'],
        [lv2, 'failed', 'Internal error: something odd.'],
      ],
    );
  });
});

describe('classifyFailure: exit code rules', () => {
  test('warnings with exit 0 are no failure', () => {
    const stderr = '  WARNING: Logical volume vg0/lv1 not zeroed.\n  WARNING: This metadata update is NOT backed up.\n';
    assert.deepEqual(classifyFailure(result(0, stderr), [lv1, lv2]), []);
  });

  test('exit 0 with empty stderr is no failure', () => {
    assert.deepEqual(classifyFailure(result(0, ''), [lv1]), []);
  });

  test('warnings only but a non-zero exit: every LV failed, never reported ok', () => {
    const failures = classifyFailure(result(5, '  WARNING: This metadata update is NOT backed up.\n'), [lv1, lv2]);
    assert.deepEqual(
      failures.map((f) => [f.lv, f.cls]),
      [
        [lv1, 'failed'],
        [lv2, 'failed'],
      ],
    );
    assert.match(failures[0]!.message, /exit code 5/);
  });

  test('unknown text with a non-zero exit becomes "failed" with the text, for every LV', () => {
    const failures = classifyFailure(result(5, '  Something went wrong in a way never seen before.\n'), [lv1, lv2]);
    assert.equal(failures.length, 2);
    for (const f of failures) {
      assert.equal(f.cls, 'failed');
      assert.equal(f.message, 'Something went wrong in a way never seen before.');
    }
  });

  test('exit 3 is a command-line error', () => {
    const stderr = '  Nearest similar command has syntax:\n  lvchange -a y|n|ay|en|... VG|LV|Tag|Select ...\n';
    const failures = classifyFailure(result(3, stderr), [lv1]);
    assert.equal(failures.length, 1);
    assert.equal(failures[0]!.cls, 'command-line');
    assert.match(failures[0]!.message, /^Nearest similar command/);
  });

  test('a timeout gives one "timeout" failure per requested LV, whatever stderr says', () => {
    const run = result(null, '  LV locked by other host: vg0/lv1\n', { signal: 'SIGTERM', timedOut: true, ms: 60_012 });
    const failures = classifyFailure(run, [lv1, lv2]);
    assert.deepEqual(
      failures.map((f) => [f.lv, f.cls]),
      [
        [lv1, 'timeout'],
        [lv2, 'timeout'],
      ],
    );
    assert.equal(describeFailure(failures[0]!), 'vg0/lv1: timed out after 60s and was killed');
  });

  test('a command killed by a signal (not our timeout) failed', () => {
    const failures = classifyFailure(result(null, '', { signal: 'SIGKILL' }), [lv1]);
    assert.equal(failures[0]!.cls, 'failed');
    assert.match(failures[0]!.message, /SIGKILL/);
  });

  test('a command that could not be started failed, with the reason', () => {
    const failures = classifyFailure(result(null, 'cannot run /nonexistent/lvm: spawn /nonexistent/lvm ENOENT'), [lv1]);
    assert.equal(failures[0]!.cls, 'failed');
    assert.match(failures[0]!.message, /ENOENT/);
  });

  test('the same LV requested twice is reported once', () => {
    const failures = classifyFailure(result(5, '  Logical volume vg0/lv1 in use.\n'), [lv1, { ...lv1 }]);
    assert.equal(failures.length, 1);
  });

  test('without requested LVs a failure is still reported, without an LV', () => {
    const failures = classifyFailure(result(5, '  Volume group "vgx" not found\n'), []);
    assert.equal(failures.length, 1);
    assert.equal(failures[0]!.lv, undefined);
    assert.equal(failures[0]!.cls, 'vg-not-found');
  });
});

describe('isRetryable', () => {
  test('only transient classes are retried', () => {
    const all: LvmErrorClass[] = [
      'locked-by-other-host',
      'in-use',
      'lockspace-inactive',
      'orphan-lock',
      'lv-not-found',
      'vg-not-found',
      'sh-not-supported',
      'incompatible-mode',
      'vg-lock-failed',
      'lease-storage',
      'timeout',
      'command-line',
      'failed',
    ];
    assert.deepEqual(
      all.filter((c) => isRetryable(c)),
      ['vg-lock-failed', 'timeout'],
    );
  });
});

describe('describeFailure', () => {
  test('one line naming the LV and the reason', () => {
    const stderr = '  LV locked by other host: vg0/lv1\n  Failed to lock logical volume vg0/lv1.\n';
    const [f] = classifyFailure(result(5, stderr), [lv1]);
    assert.equal(describeFailure(f!), 'vg0/lv1: locked by another host');
  });

  test('lease storage problems say which one', () => {
    const [f] = classifyFailure(result(5, '  LV vg0/lv1 lock failed: io timeout.\n'), [lv1]);
    assert.equal(describeFailure(f!), 'vg0/lv1: sanlock lease storage problem (io timeout)');
  });

  test('shared activation refusal names the LV type', () => {
    const stderr = '  Shared activation not compatible with LV type thin of vg0/thin1\n  Failed to lock logical volume vg0/thin1.\n';
    const [f] = classifyFailure(result(5, stderr), [{ vg: 'vg0', lv: 'thin1' }]);
    assert.equal(describeFailure(f!), 'vg0/thin1: shared activation is not supported for this LV type (thin)');
  });

  test('generic failures keep lvm text on one line', () => {
    const [f] = classifyFailure(result(5, '  first problem\n  second problem\n'), [lv1]);
    const line = describeFailure(f!);
    assert.equal(line, 'vg0/lv1: first problem; second problem');
    assert.ok(!line.includes('\n'));
  });
});

test('activation in a VG whose lockspace is not started: "Cannot access VG … due to failed lock."', async () => {
  const { classifyFailure } = await import('../../src/lvm/errors.js');
  const failures = classifyFailure(
    { rc: 5, signal: null, stdout: '', stderr: '  Cannot access VG vg0 due to failed lock.\n', ms: 10, timedOut: false },
    [
      { vg: 'vg0', lv: 'lv1' },
      { vg: 'vg0', lv: 'lv2' },
    ],
  );
  assert.deepEqual(
    failures.map((f) => [f.lv?.lv, f.cls]),
    [
      ['lv1', 'lockspace-inactive'],
      ['lv2', 'lockspace-inactive'],
    ],
  );
  const busy = classifyFailure(
    { rc: 5, signal: null, stdout: '', stderr: '  VG vg0 lock failed: held by other host\n  Cannot access VG vg0 due to failed lock.\n', ms: 10, timedOut: false },
    [{ vg: 'vg0', lv: 'lv1' }],
  );
  assert.equal(busy[0].cls, 'vg-lock-failed');
});
