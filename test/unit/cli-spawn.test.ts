import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_MAIN, DAEMON_MAIN, ROOT } from '../harness/paths.js';

/** The built programs, run as a user would: what goes to stdout, to stderr, and the exit status. */
function runNode(main: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], { timeout: 20_000, killSignal: 'SIGKILL', env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code as number | null) : 0;
      resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
    });
  });
}

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('virt-lvmlockctl, the built program', () => {
  test('--help and -h: the list of commands on stdout, exit 0', async () => {
    for (const flag of ['--help', '-h']) {
      const r = await runNode(CLI_MAIN, [flag]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^usage: virt-lvmlockctl COMMAND/);
      assert.match(r.stdout, /^ {2}status \[--json\] /m);
      assert.equal(r.stderr, '');
    }
  });
  test('--version, -V and version: the version on stdout, exit 0', async () => {
    for (const args of [['--version'], ['-V'], ['version']]) {
      const r = await runNode(CLI_MAIN, args);
      assert.deepEqual([r.code, r.stdout, r.stderr], [0, `${VERSION}\n`, ''], args.join(' '));
    }
  });
  test('status --help and help status: the command help on stdout, exit 0, without calling the daemon', async () => {
    const env = { VIRT_LVMLOCKD_BUS_ADDRESS: 'unix:path=/nonexistent/bus' };
    for (const args of [['status', '--help'], ['help', 'status']]) {
      const r = await runNode(CLI_MAIN, args, env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^usage: virt-lvmlockctl status \[--json\]\n/);
      assert.match(r.stdout, /--json +print the daemon's answer as JSON/);
      assert.match(r.stdout, /^exit status:$/m);
    }
  });
  test('an unknown command: exit 2, its name on stderr, nothing on stdout', async () => {
    const r = await runNode(CLI_MAIN, ['bogus']);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^virt-lvmlockctl: unknown command bogus\nusage: virt-lvmlockctl /);
  });
  test('a missing DOMAIN and an unknown option: exit 2, said on stderr with the usage line', async () => {
    const missing = await runNode(CLI_MAIN, ['settle']);
    assert.deepEqual([missing.code, missing.stdout], [2, '']);
    assert.match(missing.stderr, /^virt-lvmlockctl: missing DOMAIN\nusage: virt-lvmlockctl settle DOMAIN\n/);
    const option = await runNode(CLI_MAIN, ['status', '--foo']);
    assert.deepEqual([option.code, option.stdout], [2, '']);
    assert.match(option.stderr, /^virt-lvmlockctl: unknown option --foo for status\n/);
  });
  test('no command: exit 2, the whole usage on stderr', async () => {
    const r = await runNode(CLI_MAIN, []);
    assert.deepEqual([r.code, r.stdout], [2, '']);
    assert.match(r.stderr, /^usage: virt-lvmlockctl /m);
    assert.match(r.stderr, /^ {2}settle DOMAIN /m);
  });
  test('the daemon unreachable: exit 1, naming the bus', async () => {
    const r = await runNode(CLI_MAIN, ['status'], { VIRT_LVMLOCKD_BUS_ADDRESS: 'unix:path=/nonexistent/bus' });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^virt-lvmlockctl: .*(\/nonexistent\/bus|ENOENT)/);
  });
});

describe('virt-lvmlockd, the built program (its command line only)', () => {
  test('--help and -h: the usage on stdout, exit 0', async () => {
    for (const flag of ['--help', '-h']) {
      const r = await runNode(DAEMON_MAIN, [flag]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^usage: virt-lvmlockd /);
      assert.match(r.stdout, /-c, --config FILE/);
    }
  });
  test('--version and -V: the version, exit 0', async () => {
    for (const flag of ['--version', '-V']) {
      const r = await runNode(DAEMON_MAIN, [flag]);
      assert.deepEqual([r.code, r.stdout], [0, `${VERSION}\n`], flag);
    }
  });
  test('an unknown argument: exit 2, named on stderr', async () => {
    const r = await runNode(DAEMON_MAIN, ['--bogus']);
    assert.deepEqual([r.code, r.stdout], [2, '']);
    assert.match(r.stderr, /^virt-lvmlockd: unknown argument --bogus\nusage: virt-lvmlockd /);
  });
});
