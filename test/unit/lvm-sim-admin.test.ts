/**
 * The simulator's own parts, beyond the LVM contract: the executables and their environment,
 * the state file lock under concurrent processes, hang and delays, the invocation log, host
 * crashes, path forms and other lvs/vgs/lvmlockctl output, and the admin tool.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { contextFromEnv } from '../lvm-sim/env.js';
import { runProgram, type ProgramResult } from '../lvm-sim/exec.js';
import { SIM_BIN_DIR } from '../lvm-sim/paths.js';
import { formatSize } from '../lvm-sim/report.js';
import { runTool } from '../lvm-sim/run.js';
import { readClusterState } from '../lvm-sim/state.js';
import { lockDirOf } from '../lvm-sim/store.js';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const E1 = (lv: string) => `  LV locked by other host: ${lv}\n  Failed to lock logical volume ${lv}.\n`;

/** A fresh cluster: vg0 (sanlock, lockspace on hosts 1 and 2) with lv1 and lv2; more on request. */
async function cluster(setup: string[][] = []) {
  const dir = await mkdtemp(join(tmpdir(), 'lvm-sim-admin-'));
  dirs.push(dir);
  const stateFile = join(dir, 'cluster.json');
  const logFile = join(dir, 'invocations.log');
  const ctx = (host: number) => ({ stateFile, hostId: host, lockTimeoutMs: 5000 });
  /** In-process run of any tool as a host. */
  const tool = (host: number, name: string, ...args: string[]) => runTool(name, args, ctx(host));
  const sim = async (host: number, ...args: string[]) => {
    const r = await tool(host, 'lvm-sim', ...args);
    assert.equal(r.rc, 0, `lvm-sim ${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  const lvm = (host: number, ...args: string[]) => tool(host, 'lvm', ...args);
  const env = (host: number, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    ...process.env,
    LVMSIM_STATE: stateFile,
    LVMSIM_HOST_ID: String(host),
    LVMSIM_LOG: logFile,
    ...extra,
  });
  /** A real process through the bin/ wrapper. */
  const exec = (host: number, program: string, args: string[], extra: NodeJS.ProcessEnv = {}): Promise<ProgramResult> =>
    runProgram(join(SIM_BIN_DIR, program), args, { env: env(host, extra), timeoutMs: 20_000 });
  await sim(1, 'init');
  await sim(1, 'create-vg', 'vg0', '--lock-type', 'sanlock');
  await sim(1, 'create-lv', 'vg0', 'lv1');
  await sim(1, 'create-lv', 'vg0', 'lv2');
  await sim(2, 'lockstart', 'vg0');
  for (const args of setup) await sim(1, ...args);
  return { dir, stateFile, logFile, tool, sim, lvm, env, exec };
}

async function lvsRows(c: Awaited<ReturnType<typeof cluster>>, host: number, fields: string, ...args: string[]) {
  const r = await c.lvm(host, 'lvs', '--reportformat', 'json', '-o', fields, ...args);
  return { ...r, rows: r.stdout ? (JSON.parse(r.stdout) as { report: Array<{ lv: Array<Record<string, string>> }> }).report[0].lv : [] };
}

describe('lvm-sim executables', { concurrency: true, timeout: 60_000 }, () => {
  test('the wrappers work through a symlink and answer exactly like the in-process tool', async () => {
    const c = await cluster();
    const link = join(c.dir, 'bin');
    await mkdir(link);
    await symlink(join(SIM_BIN_DIR, 'lvm'), join(link, 'lvm'));
    const viaLink = await runProgram(join(link, 'lvm'), ['lvchange', '-aey', 'vg0/lv1'], { env: c.env(1), timeoutMs: 20_000 });
    assert.deepEqual(viaLink, { rc: 0, signal: null, stdout: '', stderr: '' });
    const refused = await c.exec(2, 'lvm', ['lvchange', '-asy', 'vg0/lv1']);
    assert.deepEqual(refused, { rc: 5, signal: null, stdout: '', stderr: E1('vg0/lv1') });
    for (const [host, program, args] of [
      [1, 'lvm', ['lvs', '--reportformat', 'json', '-o', 'lv_name,lv_attr', 'vg0']],
      [2, 'lvmlockctl', ['--info']],
      [1, 'lvm', ['lvchange', '-aey']],
      [1, 'lvm', ['lvchange', '--bogus', 'vg0/lv1']],
    ] as Array<[number, string, string[]]>) {
      const spawned = await c.exec(host, program, args);
      const inProcess = await c.tool(host, program, ...args);
      assert.deepEqual({ rc: spawned.rc, stdout: spawned.stdout, stderr: spawned.stderr }, inProcess, `${program} ${args.join(' ')}`);
    }
  });

  test('without a usable environment or state file the tools fail clearly (exit 1)', async () => {
    const c = await cluster();
    const noState = await runProgram(join(SIM_BIN_DIR, 'lvm'), ['lvs'], { env: { ...c.env(1), LVMSIM_STATE: '' }, timeoutMs: 20_000 });
    assert.deepEqual([noState.rc, noState.stdout], [1, '']);
    assert.match(noState.stderr, /^lvm-sim: LVMSIM_STATE is not set: it must name the simulated cluster's state file/);
    assert.throws(() => contextFromEnv({ LVMSIM_STATE: c.stateFile, LVMSIM_HOST_ID: '2001' }), /LVMSIM_HOST_ID="2001" is not a host id: expected an integer 1..2000/);
    assert.throws(() => contextFromEnv({ LVMSIM_STATE: c.stateFile, LVMSIM_HOST_ID: '1.5' }), /LVMSIM_HOST_ID="1.5" is not a host id/);
    assert.equal(contextFromEnv({ LVMSIM_STATE: c.stateFile }).hostId, 1);
    const missing = await runTool('lvm', ['lvs'], { stateFile: join(c.dir, 'nope.json'), hostId: 1, lockTimeoutMs: 1000 });
    assert.equal(missing.rc, 1);
    assert.match(missing.stderr, /nope\.json does not exist; create it with "lvm-sim init"/);
  });

  test('the state lock serialises concurrent processes: no update is lost, one host wins a contended LV', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `many${i}`);
    const c = await cluster(names.map((n) => ['create-lv', 'vg0', n]));
    const spread = await Promise.all(names.map((n, i) => c.exec(1 + (i % 2), 'lvm', ['lvchange', '-aey', `vg0/${n}`])));
    assert.ok(spread.every((r) => r.rc === 0), JSON.stringify(spread));
    const view = await readClusterState(c.stateFile);
    names.forEach((n, i) => {
      assert.deepEqual(view.lvs.find((lv) => lv.key === `vg0/${n}`)?.holders, [{ hostId: 1 + (i % 2), mode: 'ex', hostDead: false }], n);
    });

    const race = await Promise.all([1, 2, 1, 2, 1, 2].map((host) => c.exec(host, 'lvm', ['lvchange', '-aey', 'vg0/lv1']).then((r) => ({ host, ...r }))));
    const winners = new Set(race.filter((r) => r.rc === 0).map((r) => r.host));
    assert.equal(winners.size, 1, JSON.stringify(race));
    const [winner] = winners;
    for (const r of race.filter((x) => x.host !== winner)) assert.deepEqual([r.rc, r.stderr], [5, E1('vg0/lv1')]);
    const lv1 = (await readClusterState(c.stateFile)).lvs.find((lv) => lv.key === 'vg0/lv1');
    assert.deepEqual(lv1?.holders, [{ hostId: winner, mode: 'ex', hostDead: false }]);
    assert.equal(existsSync(lockDirOf(c.stateFile)), false, 'the lock directory was left behind');
  });

  test('a lock left by a dead process is removed; a live owner makes commands wait, then fail clearly', async () => {
    const c = await cluster();
    const lockDir = lockDirOf(c.stateFile);
    const takeLock = async (pid: number) => {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'owner'), `${pid}\n`);
    };
    const dead = spawn('true');
    await new Promise((resolve) => dead.on('close', resolve));
    await takeLock(dead.pid ?? 0);
    const stale = await c.lvm(1, 'lvchange', '-aey', 'vg0/lv1');
    assert.equal(stale.rc, 0, stale.stderr);
    assert.equal(existsSync(lockDir), false);

    // The parent of this test process is a live owner.
    await takeLock(process.ppid);
    const started = Date.now();
    const timedOut = await runTool('lvm', ['lvchange', '-aey', 'vg0/lv2'], { stateFile: c.stateFile, hostId: 2, lockTimeoutMs: 300 });
    assert.equal(timedOut.rc, 1);
    assert.match(timedOut.stderr, new RegExp(`has been held by pid ${process.ppid} for more than 300 ms`));
    assert.ok(Date.now() - started >= 300);
    assert.deepEqual((await readClusterState(c.stateFile)).lvs.find((lv) => lv.key === 'vg0/lv2')?.holders, [], 'lvchange ran without the lock');

    const waiting = c.lvm(2, 'lvchange', '-aey', 'vg0/lv2');
    await sleep(300);
    // Released atomically: a recursive rm could race the waiter taking the lock mid-removal.
    await rename(lockDir, `${lockDir}.released`);
    await rm(`${lockDir}.released`, { recursive: true });
    const waited = await waiting;
    assert.equal(waited.rc, 0, waited.stderr);
    assert.equal((await readClusterState(c.stateFile)).lvs.find((lv) => lv.key === 'vg0/lv2')?.holders[0]?.hostId, 2);
  });

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    test(`hang: the tool sleeps before taking the state lock and ends normally on ${signal}`, { timeout: 20_000 }, async () => {
      const c = await cluster();
      await c.sim(1, 'set', 'hang', '["lvchange"]');
      const child = spawn(join(SIM_BIN_DIR, 'lvm'), ['lvchange', '-aey', 'vg0/lv1'], { env: c.env(1), stdio: 'ignore' });
      const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (code, sig) => resolve([code, sig])));
      try {
        await sleep(400);
        assert.equal(child.exitCode, null, 'the hung lvchange exited by itself');
        assert.equal(existsSync(lockDirOf(c.stateFile)), false, 'a hung command holds the state lock');
        // A command that needs the state lock still gets it.
        const other = await runTool('lvm', ['vgchange', '--lockstart', 'vg0'], { stateFile: c.stateFile, hostId: 2, lockTimeoutMs: 2000 });
        assert.equal(other.rc, 0, other.stderr);
        child.kill(signal);
        assert.deepEqual(await ended, [null, signal]);
      } finally {
        child.kill('SIGKILL');
      }
      assert.deepEqual((await readClusterState(c.stateFile)).lvs.find((lv) => lv.key === 'vg0/lv1')?.holders, []);
    });
  }

  test('hang in process: the call waits until its AbortSignal fires', async () => {
    const c = await cluster();
    await c.sim(1, 'set', 'hang', '["lvs"]');
    const abort = new AbortController();
    const pending = runTool('lvm', ['lvs'], { stateFile: c.stateFile, hostId: 1, lockTimeoutMs: 1000, signal: abort.signal });
    const raced = await Promise.race([pending.then(() => 'answered'), sleep(200).then(() => 'hanging')]);
    assert.equal(raced, 'hanging');
    abort.abort();
    await assert.rejects(pending, { name: 'AbortError' });
  });

  test('delays and the invocation log: lvchange processes that ran concurrently are visible', async () => {
    const c = await cluster([['create-lv', 'vg0', 'lv3']]);
    await c.sim(1, 'set', 'delays', '{"lvchange":1000}');
    const runs = await Promise.all(['lv1', 'lv2', 'lv3'].map((lv, i) => c.exec(1 + (i % 2), 'lvm', ['lvchange', '-aey', `vg0/${lv}`])));
    assert.ok(runs.every((r) => r.rc === 0), JSON.stringify(runs));
    await c.exec(2, 'lvmlockctl', ['--info']);
    const lines = (await readFile(c.logFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { host: number; tool: string; argv: string[]; rc: number; startMs: number; endMs: number });
    const lvchanges = lines.filter((l) => l.tool === 'lvm' && l.argv[0] === 'lvchange');
    assert.equal(lvchanges.length, 3);
    assert.deepEqual(lvchanges.map((l) => l.argv.slice(1)).sort(), [['-aey', 'vg0/lv1'], ['-aey', 'vg0/lv2'], ['-aey', 'vg0/lv3']]);
    for (const l of lvchanges) {
      assert.equal(l.rc, 0);
      assert.ok(l.endMs - l.startMs >= 1000, `an lvchange took ${l.endMs - l.startMs} ms despite a 1000 ms delay`);
    }
    const overlapping = Math.max(...lvchanges.map((a) => lvchanges.filter((b) => b.startMs <= a.startMs && a.startMs < b.endMs).length));
    assert.ok(overlapping >= 2, `at most ${overlapping} lvchange ran at once`);
    const lockctl = lines.find((l) => l.tool === 'lvmlockctl');
    assert.deepEqual(lockctl && [lockctl.host, lockctl.argv, lockctl.rc], [2, ['--info'], 0]);
    // Compared with the delayed commands of the same run, not with a wall-clock bound: on a busy
    // machine a plain command can take a second too.
    const quickest = Math.min(...lvchanges.map((l) => l.endMs - l.startMs));
    assert.ok(lockctl && lockctl.endMs - lockctl.startMs < quickest, `lvmlockctl took ${lockctl && lockctl.endMs - lockctl.startMs} ms, no less than a delayed lvchange (${quickest} ms): it was delayed too`);
  });

  test('a crashed host cannot run commands; its leases block others until leaseExpiryMs, then free', async () => {
    const c = await cluster();
    await c.sim(1, 'set', 'leaseExpiryMs', '500');
    assert.equal((await c.lvm(1, 'lvchange', '-aey', 'vg0/lv1')).rc, 0);
    await c.sim(2, 'kill-host', '1');
    const killedAt = Date.now();
    const crashed = await c.lvm(1, 'lvs');
    assert.equal(crashed.rc, 5);
    assert.match(crashed.stderr, /host 1 has crashed \(lvm-sim kill-host 1\)/);
    assert.equal((await c.tool(1, 'lvm-sim', 'open', 'vg0/lv1')).rc, 1);
    const refused = await c.lvm(2, 'lvchange', '-aey', 'vg0/lv1');
    assert.deepEqual([refused.rc, refused.stderr], [5, E1('vg0/lv1')]);
    let view = await readClusterState(c.stateFile);
    assert.deepEqual(view.deadHosts, [1]);
    assert.deepEqual(view.lvs.find((lv) => lv.key === 'vg0/lv1')?.holders, [{ hostId: 1, mode: 'ex', hostDead: true }]);

    let taken;
    do {
      await sleep(50);
      taken = await c.lvm(2, 'lvchange', '-aey', 'vg0/lv1');
    } while (taken.rc !== 0 && Date.now() - killedAt < 5000);
    assert.equal(taken.rc, 0, taken.stderr);
    assert.ok(Date.now() - killedAt >= 500, 'the lease of the crashed host expired early');
    view = await readClusterState(c.stateFile);
    assert.deepEqual(view.lvs.find((lv) => lv.key === 'vg0/lv1')?.holders, [{ hostId: 2, mode: 'ex', hostDead: false }]);

    await c.sim(2, 'revive-host', '1');
    assert.equal((await c.tool(1, 'lvmlockctl', '--info')).stdout, '', 'a rebooted host keeps a lockspace');
    assert.equal((await c.lvm(1, 'lvchange', '-aey', 'vg0/lv2')).stderr, '  Cannot access VG vg0 due to failed lock.\n');
    view = await readClusterState(c.stateFile);
    assert.deepEqual(view.deadHosts, []);
    assert.deepEqual(view.lvs.find((lv) => lv.key === 'vg0/lv1')?.activeOn, [2]);
  });
});

describe('lvm-sim answers', { concurrency: true, timeout: 60_000 }, () => {
  test('lvs resolves VG/LV, /dev paths, /dev/mapper, /dev/dm-N and /dev/disk/by-id names', async () => {
    const c = await cluster([['create-vg', 'vg-a', '--lock-type', 'none'], ['create-lv', 'vg-a', 'lv-b']]);
    const ids = (await lvsRows(c, 1, 'vg_uuid,lv_uuid', 'vg-a/lv-b')).rows[0];
    const minor = (await readClusterState(c.stateFile)).lvs.find((lv) => lv.key === 'vg-a/lv-b')?.minor;
    const forms = [
      'vg-a/lv-b',
      '/dev/vg-a/lv-b',
      '/dev/mapper/vg--a-lv--b',
      `/dev/dm-${minor}`,
      '/dev/disk/by-id/dm-name-vg--a-lv--b',
      `/dev/disk/by-id/dm-uuid-LVM-${ids.vg_uuid.replace(/-/g, '')}${ids.lv_uuid.replace(/-/g, '')}`,
    ];
    for (const form of forms) {
      const r = await lvsRows(c, 1, 'vg_name,lv_name,lv_path,lv_dm_path', form);
      assert.equal(r.rc, 0, `${form}: ${r.stderr}`);
      assert.deepEqual(r.rows, [{ vg_name: 'vg-a', lv_name: 'lv-b', lv_path: '/dev/vg-a/lv-b', lv_dm_path: '/dev/mapper/vg--a-lv--b' }], form);
    }
    const several = await lvsRows(c, 1, 'lv_name', 'vg0/lv2', 'vg0/nope', 'vgx/lv1', 'vg0/lv1');
    assert.equal(several.rc, 5);
    assert.deepEqual(several.rows, [{ lv_name: 'lv1' }, { lv_name: 'lv2' }]);
    assert.equal(several.stderr, '  Failed to find logical volume "vg0/nope"\n  Volume group "vgx" not found\n  Cannot process volume group vgx\n');
    const badDm = await c.lvm(1, 'lvs', '/dev/dm-999');
    assert.deepEqual([badDm.rc, badDm.stderr], [5, '  Volume group "dm-999" not found\n  Cannot process volume group dm-999\n']);
  });

  test('lvs fields: names match without underscores or prefix, keys keep the -o order, lockargs and kernel numbers', async () => {
    const c = await cluster();
    await c.lvm(1, 'lvchange', '-aey', 'vg0/lv2');
    const r = await lvsRows(c, 1, 'name,lv_lock_args,LV_KERNEL_MINOR,lv_active_locally,segtype,lv_size', 'vg0');
    const minor = (await readClusterState(c.stateFile)).lvs.find((lv) => lv.key === 'vg0/lv2')?.minor;
    assert.deepEqual(r.rows, [
      { lv_name: 'lv1', lv_lockargs: '1.0.0:70254592', lv_kernel_minor: '-1', lv_active_locally: '', segtype: 'linear', lv_size: '64.00m' },
      { lv_name: 'lv2', lv_lockargs: '1.0.0:71303168', lv_kernel_minor: String(minor), lv_active_locally: 'active locally', segtype: 'linear', lv_size: '64.00m' },
    ]);
    const bytes = await lvsRows(c, 1, 'lv_size', '--units', 'b', 'vg0/lv1');
    assert.deepEqual(bytes.rows, [{ lv_size: '67108864B' }]);
    const unknown = await c.lvm(1, 'lvs', '-o', 'lv_name,bogus');
    assert.deepEqual([unknown.rc, unknown.stderr], [5, '  Unrecognised field: bogus\n']);
  });

  test('sizes print like lvm\'s display_size: human units round up with "<", fixed units round, b counts bytes', () => {
    const mib = 1024 * 1024;
    const size = (n: number, unit: string, suffix = true) => formatSize(n, { unit, suffix });
    assert.equal(size(64 * mib, 'r'), '64.00m');
    assert.equal(size(1020 * mib, 'r'), '1020.00m');
    assert.equal(size(1100 * mib, 'r'), '<1.08g');
    assert.equal(size(1100 * mib, 'h'), '1.07g');
    assert.equal(size(1100 * mib, 'g'), '1.07g');
    assert.equal(size(1020 * mib, 'G'), '1.07G');
    assert.equal(size(64 * mib, 'b'), '67108864B');
    assert.equal(size(64 * mib, 's', false), '131072');
    assert.equal(size(1100 * mib, 'r', false), '1.08');
  });

  test('the plain lvs and vgs tables are aligned like lvm\'s', async () => {
    const c = await cluster([['create-lv', 'vg0', 'thin1', '--thin']]);
    const table = await c.lvm(1, 'lvs', 'vg0');
    assert.equal(table.rc, 0);
    assert.equal(
      table.stdout,
      [
        '  LV    VG  Attr       LSize   Pool  Origin Data%  Meta%  Move Log Cpy%Sync Convert',
        '  lv1   vg0 -wi-------  64.00m                                                     ',
        '  lv2   vg0 -wi-------  64.00m                                                     ',
        '  pool0 vg0 twi---tz-- 256.00m                                                     ',
        '  thin1 vg0 Vwi---tz--  64.00m pool0                                               ',
        '',
      ].join('\n'),
    );
    const vgsTable = await c.lvm(1, 'vgs', '-o+vg_lock_type,vg_lock_args', 'vg0');
    assert.equal(vgsTable.stdout, '  VG  #PV #LV #SN Attr   VSize    VFree   LockType VLockArgs    \n  vg0   1   4   0 wz--ns 1020.00m 380.00m sanlock  1.0.0:lvmlock\n');
    const bare = await c.lvm(1, 'lvs', '--noheadings', '--separator', '|', '-o', 'lv_name,lv_attr', 'vg0/lv1');
    assert.equal(bare.stdout, '  lv1|-wi-------\n');
  });

  test('vgs reports lock types; unknown VGs fail with lvm\'s text', async () => {
    const c = await cluster([['create-vg', 'localvg', '--lock-type', 'none'], ['create-vg', 'dlmvg', '--lock-type', 'dlm']]);
    const r = await c.lvm(1, 'vgs', '--reportformat', 'json', '-o', 'vg_name,vg_lock_type,vg_attr');
    assert.equal(r.rc, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { report: Array<{ vg: unknown[] }> }).report[0].vg, [
      { vg_name: 'dlmvg', vg_lock_type: 'dlm', vg_attr: 'wz--ns' },
      { vg_name: 'localvg', vg_lock_type: 'none', vg_attr: 'wz--n-' },
      { vg_name: 'vg0', vg_lock_type: 'sanlock', vg_attr: 'wz--ns' },
    ]);
    const missing = await c.lvm(1, 'vgs', '--reportformat', 'json', '-o', 'vg_name', 'vg0', 'nope');
    assert.equal(missing.rc, 5);
    assert.equal(missing.stderr, '  Volume group "nope" not found\n  Cannot process volume group nope\n');
    assert.match(missing.stdout, /\{"vg_name":"vg0"\}/);
  });

  test('a VG without lvmlockd: activation is local only, both hosts can activate, no locks', async () => {
    const c = await cluster([['create-vg', 'localvg', '--lock-type', 'none'], ['create-lv', 'localvg', 'scratch']]);
    assert.equal((await c.lvm(1, 'lvchange', '-aey', 'localvg/scratch')).rc, 0);
    assert.equal((await c.lvm(2, 'lvchange', '-aey', 'localvg/scratch')).rc, 0);
    const scratch = (await readClusterState(c.stateFile)).lvs.find((lv) => lv.key === 'localvg/scratch');
    assert.deepEqual([scratch?.holders, scratch?.activeOn, scratch?.lockResource], [[], [1, 2], null]);
    assert.ok(!(await c.tool(1, 'lvmlockctl', '--info')).stdout.includes('localvg'));
    await c.sim(1, 'open', 'localvg/scratch');
    assert.equal((await c.lvm(1, 'lvchange', '-an', 'localvg/scratch')).stderr, '  Logical volume localvg/scratch in use.\n');
  });

  test('lvmlockctl --info: GL line on the creating host, un after release, a blank line between lockspaces', async () => {
    const c = await cluster([['create-vg', 'vg1', '--lock-type', 'sanlock'], ['create-lv', 'vg1', 'data']]);
    await c.lvm(1, 'lvchange', '-asy', 'vg0/lv2');
    await c.lvm(1, 'lvchange', '-aey', 'vg0/lv1');
    await c.lvm(1, 'lvchange', '-an', 'vg0/lv2');
    const uuids = Object.fromEntries((await lvsRows(c, 1, 'lv_full_name,lv_uuid')).rows.map((r) => [r.lv_full_name, r.lv_uuid]));
    const vgUuids = Object.fromEntries(((JSON.parse((await c.lvm(1, 'vgs', '--reportformat', 'json', '-o', 'vg_name,vg_uuid')).stdout) as { report: Array<{ vg: Array<Record<string, string>> }> }).report[0].vg).map((r) => [r.vg_name, r.vg_uuid]));
    const info = await c.tool(1, 'lvmlockctl', '--info');
    assert.equal(
      info.stdout,
      [
        `VG vg0 lock_type=sanlock ${vgUuids.vg0}`,
        'LS sanlock lvm_vg0',
        'LK VG un ver 3',
        'LK GL un ver 0',
        `LK LV ex ${uuids['vg0/lv1']}`,
        `LK LV un ${uuids['vg0/lv2']}`,
        '',
        `VG vg1 lock_type=sanlock ${vgUuids.vg1}`,
        'LS sanlock lvm_vg1',
        'LK VG un ver 2',
        `LK LV un ${uuids['vg1/data']}`,
        '',
      ].join('\n'),
    );
    // Host 2 joined vg0 only, never used the global lock, never asked for an LV lock.
    assert.equal((await c.tool(2, 'lvmlockctl', '--info')).stdout, `VG vg0 lock_type=sanlock ${vgUuids.vg0}\nLS sanlock lvm_vg0\nLK VG un ver 3\n`);
  });

  test('vgchange --lockstart/--lockstop print lvm\'s text; a lockspace with active LVs does not stop', async () => {
    const c = await cluster();
    await c.lvm(2, 'lvchange', '-asy', 'vg0/lv1');
    const busy = await c.lvm(2, 'vgchange', '--lockstop', 'vg0');
    assert.deepEqual([busy.rc, busy.stderr], [5, '  VG vg0 stop failed: LVs must first be deactivated\n']);
    const adminBusy = await c.tool(2, 'lvm-sim', 'lockstop', 'vg0');
    assert.equal(adminBusy.rc, 1);
    assert.match(adminBusy.stderr, /LVs are active here \(vg0\/lv1\)/);
    await c.lvm(2, 'lvchange', '-an', 'vg0/lv1');
    assert.deepEqual(await c.lvm(2, 'vgchange', '--lockstop', 'vg0'), { rc: 0, stdout: '', stderr: '' });
    const again = await c.lvm(2, 'vgchange', '--lockstop', 'vg0');
    assert.deepEqual(again, { rc: 0, stdout: '', stderr: '  Reading VG vg0 without a lock.\n' });
    // Measured on the testbed: host 2 has no global lock of its own; host 1's lockspace was already started.
    assert.deepEqual(await c.lvm(2, 'vgchange', '--lock-start', 'vg0'), {
      rc: 0,
      stdout: '  VG vg0 starting sanlock lockspace\n  Starting locking.  Waiting for sanlock may take 20 sec to 3 min...\n',
      stderr: '  Skipping global lock: lockspace not found or started\n',
    });
    assert.deepEqual(await c.lvm(1, 'vgchange', '--lockstart', 'vg0'), { rc: 0, stdout: '  Starting locking.  Waiting for sanlock may take 20 sec to 3 min...\n', stderr: '' });
  });

  test('thin LVs: attributes of the thin LV and its pool follow activation, the pool lock is released with the last thin LV', async () => {
    const c = await cluster([['create-lv', 'vg0', 'thin1', '--thin'], ['create-lv', 'vg0', 'thin2', '--thin']]);
    await c.lvm(1, 'lvchange', '-aey', 'vg0/thin1', 'vg0/thin2');
    const attrs = async () => Object.fromEntries((await lvsRows(c, 1, 'lv_name,lv_attr,pool_lv', 'vg0/pool0', 'vg0/thin1', 'vg0/thin2')).rows.map((r) => [r.lv_name, `${r.lv_attr} ${r.pool_lv}`]));
    assert.deepEqual(await attrs(), { pool0: 'twi-aotz-- ', thin1: 'Vwi-a-tz-- pool0', thin2: 'Vwi-a-tz-- pool0' });
    const pool = () => readClusterState(c.stateFile).then((v) => v.lvs.find((lv) => lv.key === 'vg0/thin2'));
    assert.deepEqual([(await pool())?.lockResource, (await pool())?.holders], ['vg0/pool0', [{ hostId: 1, mode: 'ex', hostDead: false }]]);
    await c.lvm(1, 'lvchange', '-an', 'vg0/thin1');
    assert.deepEqual((await pool())?.holders, [{ hostId: 1, mode: 'ex', hostDead: false }], 'the pool lock went with thin2 still active');
    assert.equal((await c.lvm(1, 'lvchange', '-an', 'vg0/pool0')).stderr, '  Logical volume vg0/pool0 in use.\n');
    await c.lvm(1, 'lvchange', '-an', 'vg0/thin2');
    assert.deepEqual(await attrs(), { pool0: 'twi---tz-- ', thin1: 'Vwi---tz-- pool0', thin2: 'Vwi---tz-- pool0' });
    assert.deepEqual((await pool())?.holders, []);
  });

  test('readClusterState: holders and open counts per LV', async () => {
    const c = await cluster();
    await c.lvm(1, 'lvchange', '-asy', 'vg0/lv1');
    await c.lvm(2, 'lvchange', '-asy', 'vg0/lv1');
    await c.sim(1, 'open', 'vg0/lv1');
    await c.sim(1, 'open', 'vg0/lv1');
    await c.sim(2, 'open', 'vg0/lv1');
    await c.sim(2, 'close', 'vg0/lv1');
    const view = await readClusterState(c.stateFile);
    const lv1 = view.lvs.find((lv) => lv.key === 'vg0/lv1');
    assert.deepEqual(lv1 && { holders: lv1.holders, activeOn: lv1.activeOn, openCounts: lv1.openCounts }, {
      holders: [{ hostId: 1, mode: 'sh', hostDead: false }, { hostId: 2, mode: 'sh', hostDead: false }],
      activeOn: [1, 2],
      openCounts: { 1: 2 },
    });
    assert.deepEqual(view.lockspaces, [{ vg: 'vg0', hostIds: [1, 2] }]);
  });

  test('lvchange command-line handling: activation spellings, bad values, repeats and unknown options', async () => {
    const c = await cluster();
    assert.deepEqual(await c.lvm(1, 'lvchange', '--activate=ey', '-qy', '/dev/vg0/lv1'), { rc: 0, stdout: '', stderr: '' });
    assert.deepEqual(await c.lvm(1, 'lvchange', '-a', 'ys', '/dev/mapper/vg0-lv2'), { rc: 0, stdout: '', stderr: '' });
    const held = (await readClusterState(c.stateFile)).lvs.map((lv) => lv.holders.map((h) => h.mode).join());
    assert.deepEqual(held, ['ex', 'sh']);
    assert.deepEqual(await c.lvm(1, 'lvchange', '-ax', 'vg0/lv1'), { rc: 3, stdout: '', stderr: '  Invalid argument for --activate: x\n  Error during parsing of command line.\n' });
    assert.deepEqual(await c.lvm(1, 'lvchange', '-aey', '-asy', 'vg0/lv1'), { rc: 3, stdout: '', stderr: '  Option -a/--activate may not be repeated.\n  Error during parsing of command line.\n' });
    assert.deepEqual(await c.lvm(1, 'lvchange', '--bogus', '-aey', 'vg0/lv1'), {
      rc: 3,
      stdout: '',
      stderr: "lvchange: unrecognized option '--bogus'\n  Error during parsing of command line.\n",
    });
    const noLv = await c.lvm(1, 'lvchange', '-an');
    assert.equal(noLv.rc, 3);
    assert.equal(noLv.stderr, "  No command with matching syntax recognised.  Run 'lvchange --help' for more information.\n  Nearest similar command has syntax:\n");
    assert.equal(noLv.stdout, '  lvchange -a|--activate y|n|ay VG|LV|Tag|Select ...\n  Activate or deactivate an LV.\n');
    // A VG argument means each of its LVs, in VG order.
    const whole = await c.lvm(2, 'lvchange', '-aey', 'vg0');
    assert.deepEqual([whole.rc, whole.stderr], [5, E1('vg0/lv1') + E1('vg0/lv2')]);
    assert.equal((await c.lvm(1, 'lvcreate', 'vg0')).rc, 3);
  });

  test('admin tool: usage errors exit 2, refused operations exit 1, settings are validated', async () => {
    const c = await cluster();
    const fails = async (rc: number, pattern: RegExp, ...args: string[]) => {
      const r = await c.tool(1, 'lvm-sim', ...args);
      assert.equal(r.rc, rc, `lvm-sim ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    };
    await fails(2, /unknown command "frobnicate"/, 'frobnicate');
    await fails(2, /set delays: expected an object of milliseconds keyed by lvchange/, 'set', 'delays', '{"lvcreate":5}');
    await fails(2, /set hang: expected an array/, 'set', 'hang', '"lvchange"');
    await fails(2, /is not JSON/, 'set', 'leaseExpiryMs', 'soon');
    await fails(2, /unknown setting "colour"/, 'set', 'colour', '1');
    await fails(2, /create-vg needs --lock-type/, 'create-vg', 'vg9');
    await fails(1, /VG vg0 already exists/, 'create-vg', 'vg0', '--lock-type', 'dlm');
    await fails(1, /LV vg0\/lv1 already exists/, 'create-lv', 'vg0', 'lv1');
    await fails(1, /cannot open vg0\/lv1 on host 1: the LV is not active there/, 'open', 'vg0/lv1');
    await fails(1, /cannot close vg0\/lv1 on host 1: it is not open there/, 'close', 'vg0/lv1');
    await fails(2, /host id "0" is not an integer 1..2000/, 'kill-host', '0');
    const dump = JSON.parse((await c.sim(1, 'dump')).stdout) as { settings: unknown; vgs: Array<{ name: string }> };
    assert.deepEqual(dump.settings, { delays: {}, hang: [], hostIdSuffix: false, leaseExpiryMs: 140000 });
    assert.deepEqual(dump.vgs.map((v) => v.name), ['vg0']);
  });
});

test('creating a thin LV leaves its pool locked ex on the creator until the pool is deactivated (measured on lvm 2.03.16)', async () => {
  const c = await cluster([['create-lv', 'vg0', 'thin9', '--thin', '--pool', 'tp9']]);
  const info = await c.tool(1, 'lvmlockctl', '--info');
  assert.equal(info.stdout.match(/^LK LV ex /gm)?.length, 1, info.stdout);
  const thin = (await readClusterState(c.stateFile)).lvs.find((lv) => lv.key === 'vg0/thin9');
  assert.equal(thin?.lockResource, 'vg0/tp9');
  assert.deepEqual(thin?.holders, [{ hostId: 1, mode: 'ex', hostDead: false }]);
  const refused = await c.lvm(2, 'lvchange', '-aey', 'vg0/thin9');
  assert.equal(refused.rc, 5);
  assert.equal(refused.stderr, '  LV locked by other host: vg0/tp9\n  Failed to lock logical volume vg0/thin9.\n');
  assert.equal((await c.lvm(1, 'lvchange', '-an', 'vg0/tp9')).rc, 0);
  assert.equal((await c.lvm(2, 'lvchange', '-aey', 'vg0/thin9')).rc, 0);
});
