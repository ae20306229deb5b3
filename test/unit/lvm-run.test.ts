import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OUTPUT_CAP_BYTES, KILL_GRACE_MS, runCommand } from '../../src/lvm/run.js';

let dir = '';

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** Alive and not a zombie (a zombie is dead, only not yet reaped by whoever adopted it). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'lvm-run-test-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('runCommand', () => {
  test('returns exit code, stdout and stderr separately', async () => {
    const path = script('outputs.sh', 'echo out; echo err >&2; exit 5');
    const r = await runCommand(path, [], { timeoutMs: 5000 });
    assert.equal(r.rc, 5);
    assert.equal(r.signal, null);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(r.timedOut, false);
    assert.ok(r.ms >= 0);
  });

  test('no shell: arguments with $(...), ; and backquotes arrive literally', async () => {
    const marker = join(dir, 'must-not-exist');
    const path = script('args.sh', 'for a in "$@"; do printf "%s\\n" "$a"; done');
    const args = [`$(touch ${marker})`, `x; touch ${marker}`, `\`touch ${marker}\``, '*', '-aey'];
    const r = await runCommand(path, args, { timeoutMs: 5000 });
    assert.equal(r.rc, 0);
    assert.deepEqual(r.stdout.split('\n').slice(0, -1), args);
    assert.equal(existsSync(marker), false);
  });

  test('stdin is not inherited: a command reading stdin sees end of file at once', async () => {
    const path = script('reads-stdin.sh', 'cat; echo "read done"');
    const r = await runCommand(path, [], { timeoutMs: 5000 });
    assert.equal(r.timedOut, false);
    assert.equal(r.stdout, 'read done\n');
  });

  test('runs with LC_ALL=C so that lvm messages are the English texts the classifier knows', async () => {
    const path = script('locale.sh', 'echo "$LC_ALL"');
    const r = await runCommand(path, [], { timeoutMs: 5000 });
    assert.equal(r.stdout, 'C\n');
  });

  test('timeout kills the whole process group, children included', async () => {
    const pidFile = join(dir, 'child.pid');
    const path = script('spawns.sh', `sleep 30 &\necho $! > ${pidFile}\nsleep 30`);
    const started = Date.now();
    const r = await runCommand(path, [], { timeoutMs: 300 });
    const elapsed = Date.now() - started;
    assert.equal(r.timedOut, true);
    assert.equal(r.rc, null);
    assert.equal(r.signal, 'SIGTERM');
    assert.ok(elapsed < 5000, `took ${elapsed} ms`);
    const childPid = Number(readFileSync(pidFile, 'utf8').trim());
    assert.ok(childPid > 0);
    assert.ok(await waitFor(() => !isAlive(childPid), 2000), `child ${childPid} survived the timeout`);
  });

  test('a command that ignores SIGTERM is killed with SIGKILL after the grace period', async () => {
    const pidFile = join(dir, 'stubborn.pid');
    const path = script('stubborn.sh', `trap '' TERM\nsleep 30 &\necho $! > ${pidFile}\nwait`);
    const started = Date.now();
    const r = await runCommand(path, [], { timeoutMs: 200 });
    const elapsed = Date.now() - started;
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, 'SIGKILL');
    assert.ok(elapsed >= 200 + KILL_GRACE_MS - 50, `resolved after ${elapsed} ms, before the grace period ended`);
    assert.ok(elapsed < 200 + 3 * KILL_GRACE_MS, `took ${elapsed} ms`);
    const childPid = Number(readFileSync(pidFile, 'utf8').trim());
    assert.ok(await waitFor(() => !isAlive(childPid), 2000), `child ${childPid} survived SIGKILL`);
  });

  test('output is capped; the command still runs to its end', async () => {
    const total = OUTPUT_CAP_BYTES + 2 * 1024 * 1024;
    const path = script('floods.sh', `head -c ${total} /dev/zero | tr '\\0' a; echo finished >&2`);
    const r = await runCommand(path, [], { timeoutMs: 20_000 });
    assert.equal(r.rc, 0);
    assert.equal(r.timedOut, false);
    assert.equal(Buffer.byteLength(r.stdout), OUTPUT_CAP_BYTES);
    assert.match(r.stderr, /^finished\n/);
    assert.match(r.stderr, new RegExp(`stdout truncated: ${total - OUTPUT_CAP_BYTES} bytes`));
  });

  test('a command that cannot be started resolves with the reason instead of throwing', async () => {
    const r = await runCommand(join(dir, 'no-such-command'), [], { timeoutMs: 5000 });
    assert.equal(r.rc, null);
    assert.equal(r.timedOut, false);
    assert.match(r.stderr, /cannot run .*no-such-command.*ENOENT/);
  });
});
