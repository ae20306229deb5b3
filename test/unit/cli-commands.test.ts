import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMANDS, findCommand, type Command, type Invocation } from '../../src/cli/commands.js';
import { INTROSPECTION_XML } from '../../src/control/names.js';

function invocation(name: string, options: Invocation['options'] = {}, args: string[] = []): Invocation {
  return { command: findCommand(name)!, args, options };
}

function render(name: string, reply: string, options: Invocation['options'] = {}) {
  const action = findCommand(name)!.action;
  assert.equal(action.kind, 'dbus');
  return (action as Extract<Command['action'], { kind: 'dbus' }>).render(reply, invocation(name, options));
}

describe('the command table', () => {
  test("each D-Bus command calls a method of the daemon's interface with as many string arguments as it takes", () => {
    for (const c of COMMANDS) {
      if (c.action.kind !== 'dbus' || c.action.dbusArgs) continue;
      const method = new RegExp(`<method name="${c.action.member}">([\\s\\S]*?)</method>`).exec(INTROSPECTION_XML);
      assert.ok(method, `${c.name}: ${c.action.member} is a method of the interface`);
      const inArgs = [...method[1].matchAll(/type="s" direction="in"/g)].length;
      assert.equal(inArgs, c.args.length, `${c.name}: ${c.action.member} takes ${inArgs} arguments`);
      assert.ok(c.action.timeoutMs > 0, `${c.name} has a timeout`);
    }
  });
  test('names, and option names within a command, are unique', () => {
    assert.equal(new Set(COMMANDS.map((c) => c.name)).size, COMMANDS.length);
    for (const c of COMMANDS) {
      const forms = c.options.flatMap((o) => [o.long, ...(o.short ? [`-${o.short}`] : [])]);
      assert.equal(new Set([...forms, 'help', '-h']).size, forms.length + 2, c.name);
    }
  });
});

describe('rendering the replies', () => {
  const report = (problems: string[]) => JSON.stringify({ domains: 2, took: ['vg0/lv1'], released: [], problems, ms: 7 });
  test('reconcile: a summary line, and exit 0 without problems', () => {
    assert.deepEqual(render('reconcile', report([])), { stdout: 'reconciled 2 running domains in 7 ms: took vg0/lv1; released nothing\n', code: 0 });
  });
  test('reconcile: the problems are printed and the exit status is 1, as text and as JSON', () => {
    const text = render('reconcile', report(['vg0/lv2: held by another host']));
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^problem: vg0\/lv2: held by another host$/m);
    assert.deepEqual(render('reconcile', report(['x']), { json: true }), { stdout: `${report(['x'])}\n`, code: 1 });
  });
  test('status --json passes the reply through; status alone prints the table', () => {
    const status = JSON.stringify({ version: '1', startedAt: 'now', managedVgs: ['vg0'], libvirt: { owner: ':1.2' }, locks: [], domains: [], lastReconcile: null });
    assert.deepEqual(render('status', status, { json: true }), { stdout: `${status}\n`, code: 0 });
    const table = render('status', status);
    assert.equal(table.code, 0);
    assert.match(table.stdout, /^LV\s+MODE\s+WANTED/m);
  });
  test('migrate-out, settle and reload print the reply as it is', () => {
    for (const name of ['migrate-out', 'settle', 'reload']) assert.deepEqual(render(name, 'done'), { stdout: 'done\n', code: 0 }, name);
  });
});
