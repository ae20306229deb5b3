import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CONFIG, daemonUsage, parseDaemonArgs } from '../../src/cli/daemon-args.js';

describe("parseDaemonArgs: the daemon's command line", () => {
  test('no argument: the default configuration file, not named explicitly', () => {
    assert.deepEqual(parseDaemonArgs([]), { kind: 'run', configFile: DEFAULT_CONFIG, explicit: false });
  });
  test('--config FILE, -c FILE and --config=FILE name the file', () => {
    for (const argv of [['--config', '/x.yaml'], ['-c', '/x.yaml'], ['--config=/x.yaml']]) {
      assert.deepEqual(parseDaemonArgs(argv), { kind: 'run', configFile: '/x.yaml', explicit: true });
    }
  });
  test('--config without a file is a usage error', () => {
    assert.deepEqual(parseDaemonArgs(['--config']), { kind: 'usage', message: '--config needs a file' });
    assert.deepEqual(parseDaemonArgs(['-c']), { kind: 'usage', message: '-c needs a file' });
    assert.deepEqual(parseDaemonArgs(['--config=']), { kind: 'usage', message: '--config needs a file' });
  });
  test('--help/-h and --version/-V', () => {
    for (const w of ['--help', '-h']) assert.deepEqual(parseDaemonArgs([w]), { kind: 'help' });
    for (const w of ['--version', '-V']) assert.deepEqual(parseDaemonArgs([w]), { kind: 'version' });
  });
  test('an unknown argument is named', () => {
    assert.deepEqual(parseDaemonArgs(['--bogus']), { kind: 'usage', message: 'unknown argument --bogus' });
    assert.deepEqual(parseDaemonArgs(['-c', '/x', 'extra']), { kind: 'usage', message: 'unknown argument extra' });
  });
  test('the usage names every option and the exit statuses', () => {
    const text = daemonUsage();
    for (const o of ['--config', '-c', '--help', '-h', '--version', '-V']) assert.match(text, new RegExp(`(^|[ ,|\\[])${o}\\b`, 'm'), o);
    assert.match(text, /^usage: virt-lvmlockd/);
    assert.match(text, /^ {2}2 {2}bad usage/m);
  });
});
