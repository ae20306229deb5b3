import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  daemonStatusCommand,
  hostLiveness,
  hostStatusCommand,
  parseHostStatus,
  parseMonotime,
  parseWatchdogFireTimeout,
  type HostRecord,
} from '../../src/holders/host-status.js';
import { holderLiveness, livenessText, LivenessReader } from '../../src/holders/liveness.js';
import { clockTime } from '../../src/holders/report.js';
import { parseClientRead } from '../../src/holders/sanlock-read.js';
import type { RunResult } from '../../src/lvm/run.js';

function sample(name: string): string {
  return readFileSync(new URL(`../../../test/fixtures/sanlock/${name}`, import.meta.url), 'utf8');
}

/** The output printed under one "### host$ command" heading of a captured session. */
function commandOutput(text: string, command: string): string {
  const start = text.indexOf(`$ ${command}`);
  assert.ok(start >= 0, `the sample has no ${command}`);
  const body = text.slice(text.indexOf('\n', start) + 1);
  const end = body.indexOf('\n###');
  return end < 0 ? body : body.slice(0, end);
}

/** The crash capture's sections, by the sanlock monotime hvB printed with each lvchange try. */
function crashSections(): Map<number, { rc: number; text: string }> {
  const sections = new Map<number, { rc: number; text: string }>();
  for (const part of sample('host-crash-expiry.txt').split(/^--- /m).slice(1)) {
    const m = /monotime=(\d+)/.exec(part);
    if (!m) continue;
    sections.set(Number(m[1]), { rc: Number(/lvchange rc=(\d+)/.exec(part)![1]), text: part });
  }
  return sections;
}

function crashAt(monotime: number): { hvA: HostRecord; hvB: HostRecord; rc: number; text: string } {
  const s = crashSections().get(monotime);
  assert.ok(s, `the capture has a section at monotime ${monotime}`);
  const hosts = parseHostStatus(s.text);
  return { hvA: hosts.find((h) => h.ownerName === 'hvA')!, hvB: hosts.find((h) => h.ownerName === 'hvB')!, ...s };
}

function ok(stdout: string): RunResult {
  return { rc: 0, signal: null, stdout, stderr: '', ms: 5, timedOut: false };
}

describe('sanlock client host_status -D (sanlock 3.8.5, both hosts renewing)', () => {
  const out = commandOutput(sample('host_status-and-read-live.txt'), 'sanlock client host_status');

  test('the command asks the VG lockspace, with -D for last_live and io_timeout', () => {
    assert.deepEqual(hostStatusCommand('vg0'), ['client', 'host_status', '-s', 'lvm_vg0', '-D']);
    assert.deepEqual(daemonStatusCommand(), ['client', 'status', '-D']);
  });

  test('gives each host its record', () => {
    assert.deepEqual(parseHostStatus(out), [
      { hostId: 1, timestamp: 242, lastCheck: 247, lastLive: 247, ownerId: 1, ownerGeneration: 1, ioTimeout: 10, ownerName: 'hvA' },
      { hostId: 2, timestamp: 227, lastCheck: 247, lastLive: 247, ownerId: 2, ownerGeneration: 1, ioTimeout: 10, ownerName: 'hvB' },
    ]);
  });

  test('both are LIVE shortly after', () => {
    for (const h of parseHostStatus(out)) assert.deepEqual(hostLiveness(h, 250), { state: 'LIVE', silentFor: 3 });
  });

  test('output without -D (no last_live) is refused, naming the field', () => {
    assert.throws(() => parseHostStatus('1 timestamp 242\n2 timestamp 227\n'), /host 1 has no last_live field \(was -D given\?\)/);
  });

  test('an empty lockspace gives no hosts', () => {
    assert.deepEqual(parseHostStatus(''), []);
  });
});

describe('sanlock client status -D: the daemon clock', () => {
  test('monotime=262', () => {
    assert.equal(parseMonotime(commandOutput(sample('client-status-D.txt'), 'sanlock client status')), 262);
  });
  test('sanlock 3.8.5 does not print watchdog_fire_timeout: the default of 60 s applies', () => {
    assert.equal(parseWatchdogFireTimeout(sample('client-status-D.txt')), undefined);
  });
  test('a sanlock that prints watchdog_fire_timeout sets the expiry with it', async () => {
    const status = sample('client-status-D.txt').replace('    monotime=262\n', '    watchdog_fire_timeout=30\n    monotime=545\n');
    assert.equal(parseWatchdogFireTimeout(status), 30);
    const reader = new LivenessReader(async (_f, args) => ok(args[1] === 'status' ? status : crashSections().get(545)!.text));
    const reading = await reader.read('vg0', 500);
    assert.deepEqual(holderLiveness(reading, 1), { hostId: 1, state: 'DEAD', silentFor: 133, freeAt: 412 + 80 + 30 });
  });
  test('output without monotime= is refused', () => {
    assert.throws(() => parseMonotime('daemon hvA\n    our_host_name=hvA\n'), /no monotime= line/);
  });
});

describe("sanlock's rule on the real crash of hvA (io_timeout 10 s, killed at about monotime 416)", () => {
  test('2 s after the kill (monotime 418) hvA still counts as LIVE: it renewed 6 s before', () => {
    const { hvA, rc } = crashAt(418);
    assert.equal(rc, 5);
    assert.deepEqual(hostLiveness(hvA, 418), { state: 'LIVE', silentFor: 6 });
  });

  test('at monotime 545 hvA is FAIL (133 s silent: past 8 x 10 s, not past 8 x 10 + 60 s), and its leases free at 552', () => {
    const { hvA, hvB, rc } = crashAt(545);
    assert.equal(hvA.lastLive, 412);
    assert.equal(rc, 5, 'lvchange was still refused');
    assert.deepEqual(hostLiveness(hvA, 545), { state: 'FAIL', silentFor: 133, freeAt: 552 });
    assert.equal(hostLiveness(hvB, 545).state, 'LIVE');
  });

  test('at monotime 552 it is still FAIL (140 s is not more than 140 s), and lvchange was still refused', () => {
    const { hvA, rc } = crashAt(552);
    assert.equal(rc, 5);
    assert.equal(hostLiveness(hvA, 552).state, 'FAIL');
  });

  test('the next try was granted, with hvB owning the lease from monotime 557: within 5 s after the ETA of 552', () => {
    const { hvA, rc, text } = crashAt(560);
    assert.equal(rc, 0);
    assert.deepEqual(hostLiveness(hvA, 560), { state: 'DEAD', silentFor: 148, freeAt: 552 });
    const lease = text.split('\n').filter((l) => /^[rh] /.test(l)).join('\n');
    const [owner] = parseClientRead(lease, 0);
    assert.equal(owner!.hostId, 2);
    assert.ok(owner!.timestamp! > 552 && owner!.timestamp! <= 557, `granted at ${owner!.timestamp}`);
  });

  test('DEAD starts the second after the ETA', () => {
    assert.equal(hostLiveness(crashAt(545).hvA, 553).state, 'DEAD');
  });

  test('a free host_id (timestamp 0) is FREE; a host never seen renewing is UNKNOWN', () => {
    const base = crashAt(545).hvA;
    assert.deepEqual(hostLiveness({ ...base, timestamp: 0 }, 545), { state: 'FREE' });
    assert.deepEqual(hostLiveness({ ...base, lastLive: 0 }, 545), { state: 'UNKNOWN' });
  });

  test("the holder's own io_timeout sets the times: with 20 s, LIVE until 160 s of silence, free at last_live + 160 + 60", () => {
    const slow = { ...crashAt(545).hvA, ioTimeout: 20 };
    assert.deepEqual(hostLiveness(slow, 545), { state: 'LIVE', silentFor: 133 });
    assert.deepEqual(hostLiveness(slow, 573), { state: 'FAIL', silentFor: 161, freeAt: 632 });
  });
});

describe('what a refusal says of the holder', () => {
  // Local time, so "12:05:40" holds in any time zone.
  const WALL = new Date(2026, 11, 2, 12, 5, 33).getTime();
  const reading = { vg: 'vg0', monotime: 545, hosts: parseHostStatus(crashAt(545).text) };

  test('a holder that stopped renewing: for how long, and the wall time its locks free', () => {
    const live = holderLiveness(reading, 1);
    assert.equal(livenessText('hvA', live, reading, WALL, clockTime), 'hvA has not renewed its lease for 133 s; its locks free at about 12:05:40 (in 7 s)');
  });

  test('after the ETA: since when they are free to take', () => {
    const later = { ...reading, monotime: 560 };
    assert.equal(
      livenessText('hvA', holderLiveness(later, 1), later, WALL, clockTime),
      'hvA has not renewed its lease for 148 s; its locks are free to take since about 12:05:25 (8 s ago)',
    );
  });

  test('a live holder: when it renewed', () => {
    assert.equal(livenessText('hvB', holderLiveness(reading, 2), reading, WALL, clockTime), 'hvB is alive (renewed 10 s ago)');
  });

  test('a host_id sanlock has no record of, or a reading that failed, is said to be unknown', () => {
    assert.equal(livenessText('host_id 7', holderLiveness(reading, 7), reading, WALL, clockTime), 'liveness of host_id 7 unknown: sanlock has no record of host_id 7 in lockspace lvm_vg0');
    const failed = { vg: 'vg0', unknown: 'sanlock client host_status -s lvm_vg0 failed: exit code 1: x' };
    assert.equal(livenessText('hvA', holderLiveness(failed, 1), failed, WALL, clockTime), 'liveness of hvA unknown: sanlock client host_status -s lvm_vg0 failed: exit code 1: x');
  });
});

describe('LivenessReader', () => {
  const hostStatus = commandOutput(sample('host_status-and-read-live.txt'), 'sanlock client host_status');
  const status = commandOutput(sample('client-status-D.txt'), 'sanlock client status');

  test('runs host_status and status -D side by side, each bounded by the budget', async () => {
    const started: Array<{ args: string[]; timeoutMs: number }> = [];
    const release: Array<() => void> = [];
    const reader = new LivenessReader(async (file, args, o) => {
      assert.equal(file, 'sanlock');
      started.push({ args, timeoutMs: o.timeoutMs });
      await new Promise<void>((resolve) => release.push(resolve));
      return ok(args[1] === 'status' ? status : hostStatus);
    });
    const pending = reader.read('vg0', 800);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(started, [
      { args: ['client', 'host_status', '-s', 'lvm_vg0', '-D'], timeoutMs: 800 },
      { args: ['client', 'status', '-D'], timeoutMs: 800 },
    ]);
    for (const r of release) r();
    const reading = await pending;
    assert.ok(!('unknown' in reading));
    assert.equal(reading.monotime, 262);
    assert.deepEqual(reading.hosts.map((h) => h.ownerName), ['hvA', 'hvB']);
  });

  test('a sanlock that does not answer within the budget: unknown, and no later than the budget', async () => {
    const reader = new LivenessReader(() => new Promise(() => undefined));
    const t0 = performance.now();
    const reading = await reader.read('vg0', 50);
    assert.ok(performance.now() - t0 < 1000);
    assert.deepEqual(reading, { vg: 'vg0', unknown: 'sanlock client host_status -s lvm_vg0 gave no answer within 50 ms' });
  });

  test('a lockspace sanlock does not know: the exit code and message', async () => {
    const reader = new LivenessReader(async (_f, args) => (args[1] === 'status' ? ok(status) : { ...ok(''), rc: 1, stdout: 'host_status error -2\n' }));
    assert.deepEqual(await reader.read('vg9', 500), { vg: 'vg9', unknown: 'sanlock client host_status -s lvm_vg9 failed: exit code 1: host_status error -2' });
  });

  test('no sanlock daemon (sanlock 3.8.5 exits 1 and prints nothing): the exit code, and what to check', async () => {
    const reader = new LivenessReader(async () => ({ ...ok(''), rc: 1 }));
    assert.deepEqual(await reader.read('vg0', 500), {
      vg: 'vg0',
      unknown: 'sanlock client host_status -s lvm_vg0 failed: exit code 1: no error message (is the sanlock daemon running?)',
    });
  });

  test('sanlock not installed', async () => {
    const reader = new LivenessReader(async () => ({ ...ok(''), rc: null, stderr: 'cannot run sanlock: spawn sanlock ENOENT' }));
    assert.deepEqual(await reader.read('vg0', 500), { vg: 'vg0', unknown: 'sanlock client host_status -s lvm_vg0 failed: cannot run sanlock: spawn sanlock ENOENT' });
  });
});
