import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/commands.js';
import { ROOT } from '../harness/paths.js';

const CTL = join(ROOT, 'packaging/bash-completion/virt-lvmlockctl');
const DAEMON = join(ROOT, 'packaging/bash-completion/virt-lvmlockd');

/** Runs the completion function in bash for the words typed so far; the candidates, one a line. */
function complete(file: string, fn: string, words: string[], path?: string): Promise<string[]> {
  const script = `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); ${fn}; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const env = path ? { ...process.env, PATH: `${path}:${process.env.PATH}` } : process.env;
  return new Promise((resolve, reject) => {
    execFile('bash', ['--norc', '--noprofile', '-c', script, 'bash', file, ...words], { timeout: 20_000, killSignal: 'SIGKILL', env }, (err, stdout, stderr) => {
      if (err) reject(new Error(`bash completion of ${words.join(' ')} failed: ${err.message} ${stderr}`));
      else resolve(stdout.split('\n').filter(Boolean));
    });
  });
}

describe('the bash completion of virt-lvmlockctl follows the command table', () => {
  const source = readFileSync(CTL, 'utf8');

  test('its command list is exactly the table, in order', () => {
    const m = /^\s*local commands='([^']*)'$/m.exec(source);
    assert.ok(m, 'the completion has a commands list');
    assert.deepEqual(m[1].split(' '), COMMANDS.map((c) => c.name));
  });

  test("each command has its line, with the table's options and argument kind", () => {
    const lines = new Map<string, { opts: string[]; arg: string }>();
    for (const m of source.matchAll(/^\s*([a-z-]+)\)\s+opts='([^']*)' arg=(?:'([^']*)'|(\S+)) ;;$/gm)) {
      lines.set(m[1], { opts: m[2].split(' ').filter(Boolean), arg: m[3] ?? m[4] });
    }
    assert.deepEqual([...lines.keys()], COMMANDS.map((c) => c.name));
    for (const c of COMMANDS) {
      const want = c.options.flatMap((o) => [`--${o.long}`, ...(o.short ? [`-${o.short}`] : [])]);
      assert.deepEqual(lines.get(c.name), { opts: want, arg: c.args[0]?.complete ?? '' }, c.name);
    }
  });

  test('completes the commands, and their options', async () => {
    assert.deepEqual(await complete(CTL, '_virt_lvmlockctl', ['virt-lvmlockctl', '']), COMMANDS.map((c) => c.name));
    assert.deepEqual(await complete(CTL, '_virt_lvmlockctl', ['virt-lvmlockctl', 's']), ['status', 'settle']);
    assert.deepEqual(await complete(CTL, '_virt_lvmlockctl', ['virt-lvmlockctl', '-']), ['--help', '-h', '--version', '-V']);
    assert.deepEqual(await complete(CTL, '_virt_lvmlockctl', ['virt-lvmlockctl', 'status', '--']), ['--json', '--help']);
    assert.deepEqual(await complete(CTL, '_virt_lvmlockctl', ['virt-lvmlockctl', 'help', 'mi']), ['migrate-out']);
  });

  test('completes DOMAIN from virsh, quoting what the shell would act on and running nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vlt-completion-'));
    try {
      const marker = join(dir, 'ran');
      await writeFile(join(dir, 'virsh'), `#!/bin/sh\nprintf '%s\\n' web 'web two' '$(touch ${marker})' db\n`);
      await chmod(join(dir, 'virsh'), 0o755);
      assert.deepEqual(await complete(CTL, '_virt_lvmlockctl', ['virt-lvmlockctl', 'settle', 'w'], dir), ['web', 'web\\ two']);
      const all = await complete(CTL, '_virt_lvmlockctl', ['virt-lvmlockctl', 'migrate-out', ''], dir);
      assert.equal(all.length, 4);
      assert.ok(all.includes(`\\$\\(touch\\ ${marker}\\)`), all.join(' | '));
      assert.deepEqual(await complete(CTL, '_virt_lvmlockctl', ['virt-lvmlockctl', 'settle', 'web', ''], dir), [], 'one DOMAIN only');
      assert.deepEqual(await complete(CTL, '_virt_lvmlockctl', ['virt-lvmlockctl', 'status', ''], dir), [], 'status takes no DOMAIN');
      assert.equal(existsSync(marker), false, 'a domain name was never run');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the bash completion of virt-lvmlockd', () => {
  test("completes the daemon's options", async () => {
    assert.deepEqual(await complete(DAEMON, '_virt_lvmlockd', ['virt-lvmlockd', '-']), ['--config', '-c', '--help', '-h', '--version', '-V']);
  });
  test('completes a file after --config', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vlt-completion-'));
    try {
      await writeFile(join(dir, 'config.yaml'), '');
      assert.deepEqual(await complete(DAEMON, '_virt_lvmlockd', ['virt-lvmlockd', '--config', join(dir, 'con')]), [join(dir, 'config.yaml')]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
