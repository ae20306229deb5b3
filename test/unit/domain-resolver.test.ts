import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';

import { parseDomainXml, type DiskRef } from '../../src/domain/disks.js';
import { classifyPath, nodeHostFs, type HostFs } from '../../src/domain/host-path.js';
import { DiskResolver } from '../../src/domain/resolver.js';
import type { LvRef } from '../../src/locks/lv.js';
import type { Logger } from '../../src/log/logger.js';

/** Fixtures live in the source tree; compiled tests run from dist/test/unit. */
function fixture(name: string): string {
  return readFileSync(new URL(`../../../test/fixtures/xml/${name}`, import.meta.url), 'utf8');
}

/** A logger that keeps what it is given, by level. */
function recordingLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (message: string | (() => string)) => {
    lines.push({ level, message: typeof message === 'function' ? message() : message });
  };
  return {
    lines,
    error: at('error'),
    warning: at('warning'),
    notice: at('notice'),
    info: at('info'),
    debug: at('debug'),
    setLevel: () => undefined,
    close: async () => undefined,
  };
}

type Node = { link: string } | { file: string } | { block: number } | { char: true };

function errno(code: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${path}`), { code });
}

/**
 * A host filesystem in a table: links (followed component by component, as the kernel does),
 * regular files (text), block and character device nodes. Directories are implied by paths.
 */
class TableFs implements HostFs {
  readonly calls: string[] = [];
  constructor(
    private readonly nodes: Record<string, Node>,
    private readonly failures: Record<string, NodeJS.ErrnoException | 'hang'> = {},
  ) {}

  private node(path: string): Node | 'dir' | undefined {
    if (Object.hasOwn(this.nodes, path)) return this.nodes[path];
    return Object.keys(this.nodes).some((key) => key.startsWith(`${path}/`)) || path === '/' ? 'dir' : undefined;
  }

  private async guard(op: string, path: string): Promise<void> {
    this.calls.push(`${op} ${path}`);
    const failure = this.failures[path];
    if (failure === 'hang') await new Promise(() => undefined);
    if (failure !== undefined) throw failure;
  }

  async realpath(path: string): Promise<string> {
    await this.guard('realpath', path);
    let resolved = '/';
    const pending = path.split('/').filter((part) => part !== '');
    for (let hops = 0; pending.length > 0; ) {
      const next = posix.join(resolved, pending.shift()!);
      const node = this.node(next);
      if (node === undefined) throw errno('ENOENT', path);
      if (node !== 'dir' && 'link' in node) {
        if ((hops += 1) > 40) throw errno('ELOOP', path);
        const target = posix.resolve(resolved, node.link);
        pending.unshift(...target.split('/').filter((part) => part !== ''));
        resolved = '/';
        continue;
      }
      resolved = next;
    }
    return resolved;
  }

  async stat(path: string): Promise<{ isBlockDevice(): boolean; rdev: number }> {
    const real = await this.realpath(path);
    const node = this.node(real)!;
    const block = node !== 'dir' && 'block' in node;
    return { isBlockDevice: () => block, rdev: block ? node.block : 0 };
  }

  async lstat(path: string): Promise<{ isSymbolicLink(): boolean }> {
    await this.guard('lstat', path);
    const node = this.node(path);
    if (node === undefined) throw errno('ENOENT', path);
    return { isSymbolicLink: () => node !== 'dir' && 'link' in node };
  }

  async readlink(path: string): Promise<string> {
    await this.guard('readlink', path);
    const node = this.node(path);
    if (node === undefined || node === 'dir' || !('link' in node)) throw errno('EINVAL', path);
    return node.link;
  }

  async readFile(path: string): Promise<string> {
    const real = await this.realpath(path);
    const node = this.node(real);
    if (node === undefined || node === 'dir' || !('file' in node)) throw errno('ENOENT', path);
    return node.file;
  }
}

/** dev_t of major:minor as Linux encodes it (small numbers). */
function dev(major: number, minor: number): number {
  return (major << 8) | minor;
}

/** An active LV vg/lv as the host shows it: /dev/vg/lv -> ../dm-N, sysfs dm name and uuid. */
function activeLv(vg: string, lv: string, n: number): Record<string, Node> {
  const dmName = `${vg.replaceAll('-', '--')}-${lv.replaceAll('-', '--')}`;
  const sysfs = { [`/sys/devices/virtual/block/dm-${n}/dm/name`]: { file: `${dmName}\n` }, [`/sys/devices/virtual/block/dm-${n}/dm/uuid`]: { file: `LVM-abc${n}\n` } };
  return {
    [`/dev/${vg}/${lv}`]: { link: `../dm-${n}` },
    [`/dev/mapper/${dmName}`]: { link: `../dm-${n}` },
    [`/dev/dm-${n}`]: { block: dev(253, n) },
    [`/sys/block/dm-${n}`]: { link: `../devices/virtual/block/dm-${n}` },
    [`/sys/dev/block/253:${n}`]: { link: `../../devices/virtual/block/dm-${n}` },
    ...sysfs,
  };
}

class FakeLvm {
  readonly asked: string[] = [];
  constructor(private readonly paths: Record<string, LvRef | Error> = {}) {}
  async listVgs() {
    return [
      { name: 'vg0', lockType: 'sanlock' },
      { name: 'local', lockType: '' },
    ];
  }
  async resolvePath(path: string): Promise<LvRef | undefined> {
    this.asked.push(path);
    const answer = this.paths[path];
    if (answer instanceof Error) throw answer;
    return answer;
  }
}

async function resolverFor(fs: HostFs, lvm = new FakeLvm(), pathTimeoutMs = 1000) {
  const logger = recordingLogger();
  const resolver = new DiskResolver(lvm, () => ({ includeVgs: [], excludeVgs: [] }), logger, { fs, pathTimeoutMs });
  await resolver.refreshVgs();
  return { resolver, logger, lvm };
}

function pathRef(path: string, extra: Partial<DiskRef> = {}): DiskRef {
  return { source: { kind: 'path', path }, mode: 'ex', role: 'disk', device: 'disk', ...extra };
}

describe('DiskResolver: paths outside /dev that lead to an LV', () => {
  const host = {
    ...activeLv('vg0', 'lv1', 3),
    ...activeLv('vg0', 'data-2', 7),
    '/var/lib/libvirt/images/web.img': { link: '/dev/vg0/lv1' },
    '/var/lib/libvirt/images/by-dm.img': { link: '/dev/dm-7' },
    '/srv/chain/a': { link: 'b' },
    '/srv/chain/b': { link: '/dev/mapper/vg0-data--2' },
    '/srv/images/plain.qcow2': { file: 'QFI' },
    '/srv/nodes/copy-of-dm-7': { block: dev(253, 7) },
    '/srv/nodes/sda': { block: dev(8, 0) },
    '/dev/sda': { block: dev(8, 0) },
    '/sys/devices/pci0000:00/block/sda/size': { file: '1\n' },
    '/sys/dev/block/8:0': { link: '../../devices/pci0000:00/block/sda' },
    '/srv/broken/inactive.img': { link: '/dev/vg0/lv-inactive' },
    '/srv/broken/nowhere.img': { link: '/srv/gone/x.img' },
    '/srv/links/null': { link: '/dev/null' },
    '/dev/null': { char: true },
  } satisfies Record<string, Node>;

  test('a link to /dev/VG/LV resolves to that LV with the disk mode', async () => {
    const { resolver } = await resolverFor(new TableFs(host));
    const result = await resolver.resolve('vm1', [pathRef('/var/lib/libvirt/images/web.img')]);
    assert.deepEqual([...result.wanted], [['vg0/lv1', 'ex']]);
    assert.deepEqual(result.errors, []);
  });

  test('a link to /dev/dm-N is named through sysfs, without asking LVM', async () => {
    const { resolver, lvm } = await resolverFor(new TableFs(host));
    const result = await resolver.resolve('vm1', [pathRef('/var/lib/libvirt/images/by-dm.img', { mode: 'sh' })]);
    assert.deepEqual([...result.wanted], [['vg0/data-2', 'sh']]);
    assert.deepEqual(lvm.asked, []);
  });

  test('a chain of relative and absolute links is followed to the LV', async () => {
    const { resolver } = await resolverFor(new TableFs(host));
    const result = await resolver.resolve('vm1', [pathRef('/srv/chain/a')]);
    assert.deepEqual([...result.wanted], [['vg0/data-2', 'ex']]);
  });

  test('a block device node outside /dev is named by its device number', async () => {
    const { resolver } = await resolverFor(new TableFs(host));
    const result = await resolver.resolve('vm1', [pathRef('/srv/nodes/copy-of-dm-7')]);
    assert.deepEqual([...result.wanted], [['vg0/data-2', 'ex']]);
  });

  test('a broken link into /dev is the inactive LV its target names', async () => {
    const { resolver } = await resolverFor(new TableFs(host));
    const result = await resolver.resolve('vm1', [pathRef('/srv/broken/inactive.img')]);
    assert.deepEqual([...result.wanted], [['vg0/lv-inactive', 'ex']]);
  });

  test('ordinary files, missing paths, a disk that is not device-mapper and /dev/null are not LVs, and no warning is given', async () => {
    const { resolver, logger } = await resolverFor(new TableFs(host));
    const result = await resolver.resolve('vm1', [
      pathRef('/srv/images/plain.qcow2'),
      pathRef('/srv/images/missing.qcow2'),
      pathRef('/srv/broken/nowhere.img'),
      pathRef('/srv/nodes/sda'),
      pathRef('/dev/sda'),
      pathRef('/srv/links/null'),
    ]);
    assert.deepEqual([...result.wanted], []);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.warnings, []);
    assert.ok(!logger.lines.some((line) => line.level === 'warning'));
    assert.equal(logger.lines.filter((line) => line.level === 'debug' && /is not an LV/.test(line.message)).length, 6);
  });

  test('data files, NVRAM and nvdimm reached through links are locked; the nvdimm alias maps to its LV', async () => {
    const { resolver } = await resolverFor(new TableFs(host));
    const result = await resolver.resolve('vm1', [
      pathRef('/srv/chain/a', { role: 'datastore', target: 'vda', alias: 'virtio-disk0' }),
      pathRef('/var/lib/libvirt/images/web.img', { role: 'nvram', device: 'nvram' }),
      pathRef('/dev/vg0/pm0', { role: 'nvdimm', device: 'nvdimm', alias: 'nvdimm0' }),
    ]);
    assert.deepEqual([...result.wanted], [['vg0/data-2', 'ex'], ['vg0/lv1', 'ex'], ['vg0/pm0', 'ex']]);
    assert.deepEqual([...result.aliases], [['virtio-disk0', ['vg0/data-2']], ['nvdimm0', ['vg0/pm0']]]);
  });
});

describe('DiskResolver: sources it cannot classify', () => {
  test('a path the filesystem refuses is a warning (logged), not an error and not a lock', async () => {
    const fs = new TableFs({}, { '/srv/secret/disk.img': errno('EACCES', '/srv/secret/disk.img') });
    const { resolver, logger } = await resolverFor(fs);
    const result = await resolver.resolve('vm1', [pathRef('/srv/secret/disk.img', { role: 'datastore' })]);
    assert.deepEqual([...result.wanted], []);
    assert.deepEqual(result.errors, []);
    assert.equal(result.warnings?.length, 1);
    assert.match(result.warnings![0]!, /^datastore \/srv\/secret\/disk\.img: cannot tell whether .* is an LV: EACCES/);
    const warnings = logger.lines.filter((line) => line.level === 'warning');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /domain vm1: datastore \/srv\/secret\/disk\.img: .*not locked/);
  });

  test('a filesystem that does not answer is given up after the deadline, with a warning', async () => {
    const fs = new TableFs({}, { '/mnt/hung-nfs/disk.img': 'hang' });
    const { resolver } = await resolverFor(fs, new FakeLvm(), 50);
    const started = Date.now();
    const result = await resolver.resolve('vm1', [pathRef('/mnt/hung-nfs/disk.img')]);
    assert.ok(Date.now() - started < 1000, 'bounded by the path deadline');
    assert.equal(result.warnings?.length, 1);
    assert.match(result.warnings![0]!, /did not answer within 50 ms/);
  });

  test('a /dev/dm-N that sysfs cannot name is asked of LVM, and an LVM failure stays an error (fail closed)', async () => {
    const lvm = new FakeLvm({ '/dev/dm-9': new Error('lvs timed out') });
    const { resolver } = await resolverFor(new TableFs({}), lvm);
    const result = await resolver.resolve('vm1', [pathRef('/dev/dm-9')]);
    assert.deepEqual(lvm.asked, ['/dev/dm-9']);
    assert.deepEqual(result.errors, ['/dev/dm-9: lvs timed out']);
    assert.deepEqual(result.warnings, []);
  });

  test('a broken link to /dev/dm-N is asked of LVM under the target path', async () => {
    const lvm = new FakeLvm({ '/dev/dm-4': { vg: 'vg0', lv: 'old' } });
    const { resolver } = await resolverFor(new TableFs({ '/srv/x.img': { link: '/dev/dm-4' } }), lvm);
    const result = await resolver.resolve('vm1', [pathRef('/srv/x.img')]);
    assert.deepEqual(lvm.asked, ['/dev/dm-4']);
    assert.deepEqual([...result.wanted], [['vg0/old', 'ex']]);
  });
});

describe('classifyPath on this host', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'domain-resolver-'));
    writeFileSync(join(dir, 'plain.img'), 'x');
    symlinkSync('/dev/vlt-no-such-vg/lv9', join(dir, 'inactive-lv'));
    symlinkSync('/dev/null', join(dir, 'null'));
    symlinkSync(join(dir, 'loop-b'), join(dir, 'loop-a'));
    symlinkSync(join(dir, 'loop-a'), join(dir, 'loop-b'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a broken link to /dev/VG/LV names the LV; a regular file and /dev/null do not', async () => {
    assert.deepEqual(await classifyPath(join(dir, 'inactive-lv'), nodeHostFs, 1000), { kind: 'lv', lv: { vg: 'vlt-no-such-vg', lv: 'lv9' } });
    assert.equal((await classifyPath(join(dir, 'plain.img'), nodeHostFs, 1000)).kind, 'not-lv');
    assert.equal((await classifyPath(join(dir, 'null'), nodeHostFs, 1000)).kind, 'not-lv');
    assert.equal((await classifyPath(join(dir, 'absent.img'), nodeHostFs, 1000)).kind, 'not-lv');
  });

  test('a link loop cannot be classified', async () => {
    const verdict = await classifyPath(join(dir, 'loop-a'), nodeHostFs, 1000);
    assert.equal(verdict.kind, 'unknown');
    assert.match(verdict.kind === 'unknown' ? verdict.why : '', /ELOOP/);
  });
});

describe('parse and resolve a fixture end to end', () => {
  test('every source of the data-file domain in a managed VG is wanted with its mode', async () => {
    const { resolver } = await resolverFor(new TableFs({}));
    const domain = parseDomainXml(fixture('live-datastore-app02.xml').replaceAll('appvg', 'vg0'));
    const result = await resolver.resolve(domain.name, domain.disks);
    assert.deepEqual(Object.fromEntries(result.wanted), {
      'vg0/app02-root-meta': 'ex',
      'vg0/app02-root-data': 'ex',
      'vg0/app02-shared-meta': 'sh',
      'vg0/app02-shared-data': 'sh',
      'vg0/golden-meta': 'sh',
      'vg0/golden-data': 'sh',
      'vg0/app02-scratch-data': 'ex',
      'vg0/app02-logs-meta': 'ex',
      'vg0/app02-db': 'ex',
      'vg0/app02-db-new-meta': 'ex',
      'vg0/app02-db-new-data': 'ex',
      'vg0/app02-vars': 'ex',
    });
    assert.deepEqual(result.aliases.get('virtio-disk5'), ['vg0/app02-db', 'vg0/app02-db-new-meta', 'vg0/app02-db-new-data']);
  });
});
