import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMANDS, findCommand, type Command } from '../../src/cli/commands.js';
import { parseCommandLine, type Parsed } from '../../src/cli/parse.js';

function usage(p: Parsed): { message: string; command?: string } {
  assert.equal(p.kind, 'usage', `expected a usage error, got ${JSON.stringify(p, (k, v) => (k === 'command' ? v?.name : v))}`);
  return { message: (p as { message: string }).message, command: (p as { command?: Command }).command?.name };
}

function run(p: Parsed): { command: string; args: string[]; options: Record<string, string | true> } {
  assert.equal(p.kind, 'run', `expected a run, got ${JSON.stringify(p, (k, v) => (k === 'command' ? v?.name : v))}`);
  const inv = (p as Extract<Parsed, { kind: 'run' }>).invocation;
  return { command: inv.command.name, args: inv.args, options: inv.options };
}

describe('parseCommandLine: the global options', () => {
  test('--help and -h ask for the list of commands', () => {
    for (const w of ['--help', '-h']) assert.deepEqual(parseCommandLine([w]), { kind: 'help' });
  });
  test('--version and -V ask for the version', () => {
    for (const w of ['--version', '-V']) assert.deepEqual(parseCommandLine([w]), { kind: 'version' });
  });
  test('no command at all is a usage error that asks for the whole list', () => {
    assert.deepEqual(parseCommandLine([]), { kind: 'usage', message: 'no command given', list: true });
  });
  test('an unknown command is named', () => {
    assert.deepEqual(usage(parseCommandLine(['bogus'])), { message: 'unknown command bogus', command: undefined });
  });
  test("a command's option before the command is refused with the way to write it", () => {
    assert.match(usage(parseCommandLine(['--json', 'status'])).message, /^unknown option --json \(a command's options come after it: virt-lvmlockctl status --json\)$/);
  });
  test('an option no command has is named', () => {
    assert.equal(usage(parseCommandLine(['--foo'])).message, 'unknown option --foo');
  });
  test('--help and --version take nothing after them', () => {
    assert.equal(usage(parseCommandLine(['--help', 'status'])).message, '--help takes no arguments, got status');
    assert.equal(usage(parseCommandLine(['-V', 'x'])).message, '-V takes no arguments, got x');
  });
});

describe('parseCommandLine: commands', () => {
  test('status and status --json', () => {
    assert.deepEqual(run(parseCommandLine(['status'])), { command: 'status', args: [], options: {} });
    assert.deepEqual(run(parseCommandLine(['status', '--json'])), { command: 'status', args: [], options: { json: true } });
  });
  test('settle and migrate-out take exactly one DOMAIN', () => {
    assert.deepEqual(run(parseCommandLine(['settle', 'web'])), { command: 'settle', args: ['web'], options: {} });
    assert.deepEqual(run(parseCommandLine(['migrate-out', 'db'])), { command: 'migrate-out', args: ['db'], options: {} });
    assert.deepEqual(usage(parseCommandLine(['settle'])), { message: 'missing DOMAIN', command: 'settle' });
    assert.deepEqual(usage(parseCommandLine(['migrate-out', 'a', 'b'])), { message: 'unexpected argument b', command: 'migrate-out' });
    assert.deepEqual(usage(parseCommandLine(['settle', ''])), { message: 'DOMAIN is empty', command: 'settle' });
  });
  test('a command that takes no argument refuses one', () => {
    assert.deepEqual(usage(parseCommandLine(['reload', 'now'])), { message: 'unexpected argument now', command: 'reload' });
  });
  test("an option the command does not have is named, with the command", () => {
    assert.deepEqual(usage(parseCommandLine(['status', '--foo'])), { message: 'unknown option --foo for status', command: 'status' });
    assert.deepEqual(usage(parseCommandLine(['reload', '--json'])), { message: 'unknown option --json for reload', command: 'reload' });
    assert.deepEqual(usage(parseCommandLine(['status', '--foo=1'])), { message: 'unknown option --foo for status', command: 'status' });
  });
  test('a flag given a value is refused', () => {
    assert.equal(usage(parseCommandLine(['reconcile', '--json=yes'])).message, '--json takes no value');
  });
  test('-- ends the options: a domain may start with a dash', () => {
    assert.deepEqual(run(parseCommandLine(['settle', '--', '-odd'])), { command: 'settle', args: ['-odd'], options: {} });
    assert.deepEqual(usage(parseCommandLine(['status', '--', '--help'])), { message: 'unexpected argument --help', command: 'status' });
  });
  test('every command of the table is reachable by its name', () => {
    for (const c of COMMANDS) {
      const p = parseCommandLine([c.name, ...c.args.filter((a) => !a.optional).map(() => 'x')]);
      if (c.action.kind === 'help') assert.deepEqual(p, { kind: 'help' });
      else assert.equal(run(p).command, c.name);
    }
  });
});

describe('parseCommandLine: the help of one command', () => {
  test('COMMAND --help and COMMAND -h, for every command', () => {
    for (const c of COMMANDS) {
      for (const w of ['--help', '-h']) assert.deepEqual(parseCommandLine([c.name, w]), { kind: 'help', command: c });
    }
  });
  test('--help wins over the other mistakes on the line', () => {
    assert.deepEqual(parseCommandLine(['settle', 'a', 'b', '--bogus', '--help']), { kind: 'help', command: findCommand('settle') });
  });
  test('help COMMAND is COMMAND --help; help alone is the list', () => {
    assert.deepEqual(parseCommandLine(['help', 'status']), { kind: 'help', command: findCommand('status') });
    assert.deepEqual(parseCommandLine(['help']), { kind: 'help' });
  });
  test('help of an unknown command is a usage error naming it', () => {
    assert.deepEqual(usage(parseCommandLine(['help', 'bogus'])), { message: 'unknown command bogus', command: 'help' });
  });
});

describe('parseCommandLine: a new command is one entry of the table', () => {
  const extra: Command = {
    name: 'diagnose',
    args: [],
    options: [{ long: 'out', short: 'o', value: 'FILE', help: 'where to write the archive' }],
    summary: 's',
    description: 'd',
    action: { kind: 'local', run: async () => ({ stdout: '', code: 0 }) },
  };
  const table = [...COMMANDS, extra];
  test('its options with values, in every spelling', () => {
    for (const argv of [['diagnose', '-o', 'f.tar'], ['diagnose', '--out', 'f.tar'], ['diagnose', '--out=f.tar']]) {
      assert.deepEqual(run(parseCommandLine(argv, table)), { command: 'diagnose', args: [], options: { out: 'f.tar' } });
    }
    assert.equal(usage(parseCommandLine(['diagnose', '-o'], table)).message, '-o needs a value (FILE)');
  });
});
