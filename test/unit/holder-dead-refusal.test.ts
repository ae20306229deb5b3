import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { PeerHost } from '../../src/config/types.js';
import { LivenessReader } from '../../src/holders/liveness.js';
import { HolderLookup } from '../../src/holders/lookup.js';
import { HolderRefusals } from '../../src/holders/refusal.js';
import { classifyFailure, type LvFailure } from '../../src/lvm/errors.js';
import type { RunResult } from '../../src/lvm/run.js';

// Local time, so "12:05:40" holds in any time zone.
const WALL = new Date(2026, 11, 2, 12, 5, 33).getTime();
const HOSTS: PeerHost[] = [
  { name: 'hvA', url: 'https://192.0.2.1:16515', hostId: 1 },
  { name: 'hvB', url: 'https://192.0.2.2:16515', hostId: 2 },
];

function sample(name: string): string {
  return readFileSync(new URL(`../../../test/fixtures/sanlock/${name}`, import.meta.url), 'utf8');
}

/** hvB's host_status after hvA's crash, at the try it printed with `monotime`. */
function hostStatusAt(monotime: number): string {
  const part = sample('host-crash-expiry.txt')
    .split(/^--- /m)
    .find((p) => p.includes(`monotime=${monotime}\n`));
  assert.ok(part, `the capture has a try at monotime ${monotime}`);
  return part;
}

/** The real `status -D` output, its clock set to the moment of the host_status it goes with. */
function statusAt(monotime: number): string {
  return sample('client-status-D.txt').replace('monotime=262', `monotime=${monotime}`);
}

function ok(stdout: string): RunResult {
  return { rc: 0, signal: null, stdout, stderr: '', ms: 5, timedOut: false };
}

/** The failure lvm >= 2.03.33 gives, naming host_id 1, so no lvs or lease read is needed. */
function refusedBy1(): LvFailure[] {
  return classifyFailure({ ...ok(''), rc: 5, stderr: '  LV locked by other host: vg0/lv1 (host_id 1)\n  Failed to lock logical volume vg0/lv1.\n' }, [{ vg: 'vg0', lv: 'lv1' }]);
}

function refusals(sanlock: (args: string[]) => Promise<RunResult>): { r: HolderRefusals; calls: string[][] } {
  const calls: string[][] = [];
  const run = async (file: string, args: string[]): Promise<RunResult> => {
    assert.equal(file, 'sanlock');
    calls.push(args);
    return sanlock(args);
  };
  const lookup = new HolderLookup({ run, lvm: () => 'lvm', sanlock: 'sanlock', hosts: () => HOSTS });
  return { r: new HolderRefusals(lookup, () => WALL, new LivenessReader(run)), calls };
}

function crashAt(monotime: number): (args: string[]) => Promise<RunResult> {
  return async (args) => ok(args[1] === 'status' ? statusAt(monotime) : hostStatusAt(monotime));
}

describe("refusals say whether the holder still renews its lease (hvA's real crash)", () => {
  test('133 s after its last renewal: how long it has been silent, and when its locks free', async () => {
    const { r, calls } = refusals(crashAt(545));
    assert.deepEqual(await r.describe(refusedBy1(), 5000), [
      'vg0/lv1: locked by hvA (host_id 1), domain unknown: no peer channel to ask hvA; hvA has not renewed its lease for 133 s; its locks free at about 12:05:40 (in 7 s)',
    ]);
    assert.deepEqual(calls, [
      ['client', 'host_status', '-s', 'lvm_vg0', '-D'],
      ['client', 'status', '-D'],
    ]);
  });

  test('2 s after the kill it still renewed 6 s before: alive', async () => {
    const { r } = refusals(crashAt(418));
    assert.deepEqual(await r.describe(refusedBy1(), 5000), ['vg0/lv1: locked by hvA (host_id 1), domain unknown: no peer channel to ask hvA; hvA is alive (renewed 6 s ago)']);
  });

  test('host_status cannot be read: the refusal says so', async () => {
    const { r } = refusals(async (args) => (args[1] === 'status' ? ok(statusAt(545)) : { ...ok(''), rc: 1, stdout: 'host_status error -2\n' }));
    assert.deepEqual(await r.describe(refusedBy1(), 5000), [
      'vg0/lv1: locked by hvA (host_id 1), domain unknown: no peer channel to ask hvA; liveness of hvA unknown: sanlock client host_status -s lvm_vg0 failed: exit code 1: host_status error -2',
    ]);
  });

  test('a sanlock that hangs does not hold the refusal past its budget', async () => {
    const { r } = refusals(() => new Promise(() => undefined));
    const t0 = performance.now();
    const [line] = await r.describe(refusedBy1(), 100);
    assert.ok(performance.now() - t0 < 1000, 'answered within the budget');
    assert.match(line!, /; liveness of hvA unknown: sanlock client host_status -s lvm_vg0 gave no answer within 100 ms$/);
  });

  test('without a liveness reader the refusal is as before', async () => {
    const lookup = new HolderLookup({ run: async () => ok(''), lvm: () => 'lvm', sanlock: 'sanlock', hosts: () => HOSTS });
    assert.deepEqual(await new HolderRefusals(lookup, () => WALL).describe(refusedBy1(), 5000), ['vg0/lv1: locked by hvA (host_id 1), domain unknown: no peer channel to ask hvA']);
  });
});

describe('whether a start may wait: only holders that stopped renewing', () => {
  test('hvA silent for 133 s: dead-bound, free in 7 s', async () => {
    const { r } = refusals(crashAt(545));
    assert.deepEqual(await r.deadHolders(refusedBy1(), 5000), { dead: true, freeInS: 7, said: 'vg0/lv1: hvA (host_id 1) has not renewed its lease for 133 s' });
  });

  test('hvA still renewing: no wait', async () => {
    const { r } = refusals(crashAt(418));
    assert.deepEqual(await r.deadHolders(refusedBy1(), 5000), { dead: false, why: 'vg0/lv1: hvA is alive (renewed 6 s ago)' });
  });

  test('another failure beside the lock held elsewhere: no wait', async () => {
    const { r } = refusals(crashAt(545));
    const other: LvFailure = { lv: { vg: 'vg0', lv: 'lv2' }, cls: 'failed', message: 'Failed to find logical volume "vg0/lv2"' };
    const verdict = await r.deadHolders([...refusedBy1(), other], 5000);
    assert.equal(verdict.dead, false);
    assert.match(!verdict.dead ? verdict.why : '', /^not only a lock held by another host: /);
  });

  test('liveness unknown: no wait', async () => {
    const { r } = refusals(async () => ({ ...ok(''), rc: null, stderr: 'cannot run sanlock: spawn sanlock ENOENT' }));
    assert.deepEqual(await r.deadHolders(refusedBy1(), 5000), {
      dead: false,
      why: 'vg0/lv1: liveness of hvA unknown: sanlock client host_status -s lvm_vg0 failed: cannot run sanlock: spawn sanlock ENOENT',
    });
  });
});
