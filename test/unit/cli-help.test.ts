import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMANDS, findCommand } from '../../src/cli/commands.js';
import { commandHelp, mainHelp, synopsis, usageLine } from '../../src/cli/help.js';

describe('the help texts, made from the command table', () => {
  test('the list names every command with its synopsis and summary', () => {
    const text = mainHelp();
    for (const c of COMMANDS) assert.match(text, new RegExp(`^  ${escape(synopsis(c))} +${escape(c.summary)}$`, 'm'), c.name);
    assert.match(text, /^ {2}-h, --help /m);
    assert.match(text, /^ {2}-V, --version /m);
  });
  test('the list gives the three exit statuses', () => {
    const text = mainHelp();
    for (const code of ['0', '1', '2']) assert.match(text, new RegExp(`^  ${code}  \\S`, 'm'));
  });
  test("each command's help names its usage, arguments, options and exit statuses", () => {
    for (const c of COMMANDS) {
      const text = commandHelp(c);
      assert.ok(text.startsWith(`usage: virt-lvmlockctl ${synopsis(c)}\n`), c.name);
      for (const a of c.args) assert.match(text, new RegExp(`^  ${a.name} +${escape(a.help)}$`, 'm'), `${c.name} ${a.name}`);
      for (const o of c.options) assert.match(text, new RegExp(`--${o.long}\\b.*${escape(o.help)}`), `${c.name} --${o.long}`);
      assert.match(text, /^ {2}-h, --help +print this help/m, c.name);
      for (const code of ['0', '2']) assert.match(text, new RegExp(`^  ${code}  \\S`, 'm'), `${c.name} exit ${code}`);
      if (c.exit1) assert.match(text, new RegExp(`^  1  ${escape(c.exit1)}$`, 'm'), `${c.name} exit 1`);
    }
  });
  test('a D-Bus command says that 1 is also the daemon unreachable; version does not', () => {
    assert.match(commandHelp(findCommand('status')!), /^ {2}1 {2}the daemon could not be reached/m);
    assert.doesNotMatch(commandHelp(findCommand('version')!), /^ {2}1 /m);
  });
  test('synopses: options in brackets, optional arguments in brackets', () => {
    assert.equal(synopsis(findCommand('status')!), 'status [--json]');
    assert.equal(synopsis(findCommand('settle')!), 'settle DOMAIN');
    assert.equal(synopsis(findCommand('help')!), 'help [COMMAND]');
    assert.equal(usageLine(findCommand('migrate-out')), 'usage: virt-lvmlockctl migrate-out DOMAIN');
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
