import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { domainXml, run, TestHost } from '../harness/host.js';
import { assertNoConflicts, heldBy, setupSharedVg } from '../harness/cluster.js';
import { waitFor } from '../harness/process.js';

const UUID1 = '6f1a0000-0000-4000-8000-0000000000b1';
const UUID2 = '6f1a0000-0000-4000-8000-0000000000b2';
const OTHER_HOST = 7;

/**
 * A domain whose <metadata> brings it to about `bytes`, with its disks after the metadata: an XML
 * cut short anywhere would lose the disks or fail to parse, so a lock taken proves it all arrived.
 */
function largeDomainXml(name: string, uuid: string, lv: string, bytes: number): string {
  const base = domainXml(name, uuid, [{ dev: `/dev/vg0/${lv}` }]);
  const line = `<app:entry note='kept by an application for ${name}'>0123456789abcdef</app:entry>\n`;
  const metadata = `<metadata><app:notes xmlns:app='http://example.org/app/1'>\n${line.repeat(Math.ceil(bytes / line.length))}</app:notes></metadata>`;
  return base.replace('<devices>', `${metadata}<devices>`);
}

async function hookFilesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.startsWith('hook-xml.'));
}

describe('the hook with domain XML too large for one program argument', () => {
  let host: TestHost;
  afterEach(async () => {
    if (host) {
      try {
        await assertNoConflicts(host);
      } finally {
        await host.dispose();
      }
    }
  });

  async function freshHost(): Promise<TestHost> {
    const h = await TestHost.create();
    await setupSharedVg(h, [h.hostId, OTHER_HOST]);
    await h.startLibvirt();
    await h.startDaemon();
    return h;
  }

  for (const [label, bytes, uuid, lv] of [
    ['200 KiB', 200 * 1024, UUID1, 'lv1'],
    ['10 MB', 10 * 1024 * 1024, UUID2, 'lv2'],
  ] as const) {
    test(`a ${label} XML reaches the daemon whole through a file, which is gone afterwards; release end frees the LV`, async (t) => {
      host = await freshHost();
      const xml = largeDomainXml('big', uuid, lv, bytes);
      assert.ok(xml.length > 128 * 1024 && xml.length >= bytes);
      const hook = await host.hook('big', 'prepare', 'begin', xml);
      t.diagnostic(`prepare begin hook with ${label} of XML: ${Math.round(hook.ms)} ms`);
      assert.equal(hook.rc, 0, hook.stderr);
      assert.equal(hook.stdout, '');
      assert.equal((await heldBy(host)).get(`vg0/${lv}`), 'ex');
      assert.match(host.daemonLog(), /hook prepare begin of big: allowed/);
      assert.deepEqual(await hookFilesIn(host.runtimeDir), []);

      // release end answers at once and still reaches the daemon with the whole XML.
      const release = await host.hook('big', 'release', 'end', xml);
      assert.equal(release.rc, 0, release.stderr);
      await waitFor(`vg0/${lv} released`, async () => !(await heldBy(host)).has(`vg0/${lv}`), 20_000);
      await waitFor('no hook file left', async () => (await hookFilesIn(host.runtimeDir)).length === 0, 10_000);
    });
  }

  test('a large XML is still refused with the daemon verdict, naming the LV, and leaves no file', async () => {
    host = await freshHost();
    assert.equal((await host.lvmAs(OTHER_HOST, 'lvchange', '-aey', 'vg0/lv3')).rc, 0);
    const hook = await host.hook('big', 'prepare', 'begin', largeDomainXml('big', UUID1, 'lv3', 300 * 1024));
    assert.equal(hook.rc, 1);
    assert.match(hook.stderr, /^virt-lvmlockd: .*vg0\/lv3/);
    assert.equal(hook.stderr.trim().split('\n').length, 1);
    assert.deepEqual(await hookFilesIn(host.runtimeDir), []);
  });

  test('HookFile refuses a path outside the runtime directory and leaves that file alone', async () => {
    host = await freshHost();
    const outside = join(host.dir, 'hook-xml.1');
    await writeFile(outside, domainXml('vm1', UUID1, [{ dev: '/dev/vg0/lv1' }]));
    const r = await run(
      'dbus-send',
      [`--bus=${host.bus.address}`, '--print-reply', '--dest=org.virtlvmlockd', '/org/virtlvmlockd', 'org.virtlvmlockd.Manager1.HookFile', 'string:vm1', 'string:prepare', 'string:begin', 'string:-', `string:${outside}`],
      { timeoutMs: 20_000 },
    );
    assert.notEqual(r.rc, 0);
    assert.match(r.stderr, /org\.virtlvmlockd\.Error\.Refused: .*hook file .*not directly inside/);
    assert.equal(existsSync(outside), true);
    assert.equal((await heldBy(host)).get('vg0/lv1'), undefined);
  });
});
