import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { checkHookFilePath, defaultHookFileRules, HookFileError, readHookFile } from '../../src/control/hook-file.js';

describe('readHookFile: the domain XML the hook hands over in a file', () => {
  let dir: string;
  let runtimeDir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vlt-hookfile-'));
    runtimeDir = join(dir, 'run');
    await mkdir(runtimeDir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const refused = (pattern: RegExp) => (err: unknown) => err instanceof HookFileError && pattern.test(err.message);

  test('reads the whole file, byte for byte, and removes it', async () => {
    const path = join(runtimeDir, 'hook-xml.4242');
    const xml = `<domain><name>vm-é</name>${'x'.repeat(300_000)}</domain>\n`;
    await writeFile(path, xml, { mode: 0o600 });
    assert.equal(await readHookFile(path, defaultHookFileRules(runtimeDir)), xml);
    assert.equal(existsSync(path), false);
  });

  test('only a hook-named file directly inside the runtime directory is accepted', () => {
    assert.equal(checkHookFilePath(join(runtimeDir, 'hook-xml.1'), runtimeDir), undefined);
    assert.match(checkHookFilePath('hook-xml.1', runtimeDir) ?? '', /not an absolute path/);
    assert.match(checkHookFilePath(join(runtimeDir, 'hook.conf'), runtimeDir) ?? '', /not named like a hook file/);
    assert.match(checkHookFilePath(join(dir, 'hook-xml.1'), runtimeDir) ?? '', /not directly inside/);
    assert.match(checkHookFilePath(join(runtimeDir, 'sub', 'hook-xml.1'), runtimeDir) ?? '', /not directly inside/);
    assert.match(checkHookFilePath(`${runtimeDir}/sub/../hook-xml.1`, runtimeDir) ?? '', /not directly inside/);
    assert.match(checkHookFilePath('/etc/passwd', runtimeDir) ?? '', /not named like a hook file/);
  });

  test('a file elsewhere is refused and left alone', async () => {
    const outside = join(dir, 'hook-xml.1');
    await writeFile(outside, '<domain/>');
    await assert.rejects(readHookFile(outside, defaultHookFileRules(runtimeDir)), refused(/not directly inside/));
    assert.equal(existsSync(outside), true);
  });

  test('a symlink is not followed, and is removed', async () => {
    const target = join(dir, 'secret');
    await writeFile(target, 'secret');
    const path = join(runtimeDir, 'hook-xml.2');
    await symlink(target, path);
    await assert.rejects(readHookFile(path, defaultHookFileRules(runtimeDir)), refused(/cannot open the hook file .*hook-xml\.2/));
    assert.equal(existsSync(path), false);
    assert.equal(existsSync(target), true);
  });

  test('a FIFO is refused without blocking', async () => {
    const path = join(runtimeDir, 'hook-xml.3');
    execFileSync('mkfifo', [path], { timeout: 5000 });
    await assert.rejects(readHookFile(path, defaultHookFileRules(runtimeDir)), refused(/not a regular file/));
  });

  test('a file with a second link is refused', async () => {
    const path = join(runtimeDir, 'hook-xml.4');
    await writeFile(path, '<domain/>');
    await link(path, join(dir, 'other'));
    await assert.rejects(readHookFile(path, defaultHookFileRules(runtimeDir)), refused(/has 2 links/));
  });

  test('a file of another owner is refused', async () => {
    const path = join(runtimeDir, 'hook-xml.5');
    await writeFile(path, '<domain/>');
    const rules = { ...defaultHookFileRules(runtimeDir), allowedUids: [123456] };
    await assert.rejects(readHookFile(path, rules), refused(/owned by uid \d+, not by 123456/));
    assert.equal(existsSync(path), false);
  });

  test('a file above the size cap is refused, naming the cap', async () => {
    const path = join(runtimeDir, 'hook-xml.6');
    await writeFile(path, 'x'.repeat(2049));
    const rules = { ...defaultHookFileRules(runtimeDir), maxBytes: 2048 };
    await assert.rejects(readHookFile(path, rules), refused(/2049 bytes is more than the 2048 allowed/));
    assert.equal(existsSync(path), false);
  });
});
