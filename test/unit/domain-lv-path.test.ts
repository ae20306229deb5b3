import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { isDevPath, isLvmName, lvFromPath, needsLvmLookup } from '../../src/domain/lv-path.js';

/** The device-mapper name LVM gives vg/lv: each name with '-' doubled, joined by '-'. */
function dmName(vg: string, lv: string): string {
  return `${vg.replaceAll('-', '--')}-${lv.replaceAll('-', '--')}`;
}

describe('lvFromPath: forms that name an LV', () => {
  const cases: [string, string, string][] = [
    ['/dev/vg0/lv1', 'vg0', 'lv1'],
    ['/dev/my-vg/my-lv', 'my-vg', 'my-lv'],
    ['/dev/vg.1/lv_a+b', 'vg.1', 'lv_a+b'],
    ['/dev/mapper/vg0-lv1', 'vg0', 'lv1'],
    ['/dev/mapper/my--vg-my--lv', 'my-vg', 'my-lv'],
    ['/dev/mapper/a---b', 'a-', 'b'],
    ['/dev/mapper/vg-lv--', 'vg', 'lv-'],
    ['/dev/mapper/vg-pool_tdata', 'vg', 'pool_tdata'],
    ['/dev/disk/by-id/dm-name-vg0-lv1', 'vg0', 'lv1'],
    ['/dev/disk/by-id/dm-name-db--vg-db01--root', 'db-vg', 'db01-root'],
    ['//dev//vg0///lv1', 'vg0', 'lv1'],
    ['/dev/vg0/lv1/', 'vg0', 'lv1'],
    ['//dev/mapper//vg0-lv1', 'vg0', 'lv1'],
  ];
  for (const [path, vg, lv] of cases) {
    test(`${path} -> ${vg}/${lv}`, () => {
      assert.deepEqual(lvFromPath(path), { vg, lv });
      assert.equal(needsLvmLookup(path), false, 'a path whose form names the LV needs no lookup');
    });
  }

  test('decodes every /dev/mapper name LVM builds, hyphens anywhere', () => {
    const names = ['a', 'a-b', 'a--b', 'a-', 'a--', 'x-y-z', 'v.g+_', 'A9'];
    const lvNames = names.filter((name) => !name.startsWith('-'));
    for (const vg of names) {
      for (const lv of lvNames) {
        const mapperPath = `/dev/mapper/${dmName(vg, lv)}`;
        assert.deepEqual(lvFromPath(mapperPath), { vg, lv }, mapperPath);
        assert.deepEqual(lvFromPath(`/dev/disk/by-id/dm-name-${dmName(vg, lv)}`), { vg, lv });
        assert.deepEqual(lvFromPath(`/dev/${vg}/${lv}`), { vg, lv });
      }
    }
  });

  test('accepts names up to LVM\'s length limit (127 characters) and no longer', () => {
    const longest = 'v'.repeat(127);
    assert.deepEqual(lvFromPath(`/dev/${longest}/${longest}`), { vg: longest, lv: longest });
    assert.equal(lvFromPath(`/dev/${longest}v/lv`), undefined);
    assert.equal(lvFromPath(`/dev/vg/${longest}l`), undefined);
  });
});

describe('lvFromPath: forms that do not name an LV', () => {
  const notLvs = [
    '/dev/sda',
    '/dev/sda1',
    '/dev/nvme0n1',
    '/dev/nvme0n1p2',
    '/dev/sr0',
    '/dev/dm-3',
    '/dev/mapper/control',
    '/dev/mapper/mpatha',
    '/dev/mapper/luks--only',
    '/dev/mapper/vg-lv-real',
    '/dev/mapper/vg-pool-tpool',
    '/dev/mapper/-vg-lv',
    '/dev/mapper/vg-',
    '/dev/mapper/vg-lv-',
    '/dev/mapper/vg--lv-',
    '/dev/mapper/',
    '/dev/mapper/vg-lv/extra',
    '/dev/disk/by-id/dm-name-mpatha',
    '/dev/disk/by-id/dm-uuid-LVM-abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcd',
    '/dev/disk/by-uuid/3b3ab96f-c3f9-4466-b98d-9e6ce5d79b97',
    '/dev/disk/by-id',
    '/dev/block/253:3',
    '/dev/vg0',
    '/dev/vg0/',
    '/dev',
    '/dev/',
    '/',
    '',
    '/dev/vg0/lv1/extra',
    '/dev/vg0/../vg0/lv1',
    '/dev/./vg0/lv1',
    '/dev/vg0/.',
    '/dev/vg0/..',
    '/dev/../dev/vg0/lv1',
    '/dev/-vg/lv',
    '/dev/vg/-lv',
    '/dev/vg/lv:1',
    '/dev/vg/lv 1',
    '/dev/vg/lvé',
    '/dev/./lv',
    'dev/vg0/lv1',
    'vg0/lv1',
    '/var/lib/libvirt/images/vm.qcow2',
    '/devices/vg0/lv1',
    '/srv/dev/vg0/lv1',
  ];
  for (const path of notLvs) {
    test(JSON.stringify(path), () => {
      assert.equal(lvFromPath(path), undefined);
    });
  }
});

describe('needsLvmLookup', () => {
  const lookups = [
    '/dev/dm-0',
    '/dev/dm-17',
    '/dev/block/253:3',
    '/dev/disk/by-id/dm-uuid-LVM-abcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcdefabcd',
    '/dev/disk/by-uuid/3b3ab96f-c3f9-4466-b98d-9e6ce5d79b97',
    '/dev/disk/by-path/pci-0000:00:1f.2-ata-1',
    '/dev/disk/by-label/data',
    '/dev/disk/by-diskseq/12',
    '/dev/disk/by-id/wwn-0x5000c500a1b2c3d4',
    '//dev//dm-4',
    '/dev/vg0/../vg0/lv1',
    '/dev/./dm-3',
  ];
  for (const path of lookups) {
    test(`${path} needs a lookup`, () => {
      assert.equal(lvFromPath(path), undefined);
      assert.equal(needsLvmLookup(path), true);
    });
  }

  const settled = [
    '/dev/vg0/lv1',
    '/dev/mapper/vg0-lv1',
    '/dev/disk/by-id/dm-name-vg0-lv1',
    '/dev/mapper/control',
    '/dev/mapper/mpatha',
    '/dev/mapper/vg-lv-real',
    '/dev/disk/by-id/dm-name-mpatha',
    '/dev/disk/by-id/dm-uuid-CRYPT-LUKS2-0123456789abcdef0123456789abcdef-cryptdata',
    '/dev/disk/by-id/dm-uuid-mpath-3600508b400105e210000900000490000',
    '/dev/sda',
    '/dev/nvme0n1',
    '/dev/sr0',
    '/dev/loop0',
    '/dev/dm-',
    '/dev/dm-x',
    '/dev/block/sda',
    '/dev/block/253:3/extra',
    '/dev/vg0',
    '/dev/vg0/lv1/extra',
    '/dev',
    '',
    'dev/dm-3',
    '/var/lib/libvirt/images/vm.qcow2',
    '/run/dm-3',
  ];
  for (const path of settled) {
    test(`${JSON.stringify(path)} needs no lookup`, () => {
      assert.equal(needsLvmLookup(path), false);
    });
  }

  test('never both names an LV and asks for a lookup', () => {
    for (const path of [...lookups, ...settled, '/dev/mapper/a---b', '/dev/disk/by-id/dm-name-a--b-c']) {
      assert.ok(!(lvFromPath(path) !== undefined && needsLvmLookup(path)), path);
    }
  });
});

describe('isLvmName and isDevPath', () => {
  test('isLvmName follows LVM\'s rules', () => {
    for (const name of ['a', 'A1', 'x.y', 'x_y', 'x+y', 'x-y', '_', '+', 'a-', '...']) {
      assert.equal(isLvmName(name), true, name);
    }
    for (const name of ['', '.', '..', '-a', 'a/b', 'a:b', 'a b', 'ä', 'a\u0000', 'x'.repeat(128)]) {
      assert.equal(isLvmName(name), false, JSON.stringify(name));
    }
  });

  test('isDevPath: absolute paths below /dev only', () => {
    for (const path of ['/dev/sda', '//dev/vg/lv', '/dev/vg/lv/', '/dev/../etc/passwd']) {
      assert.equal(isDevPath(path), true, path);
    }
    for (const path of ['/dev', '/dev/', 'dev/sda', '/devx/sda', '/var/dev/sda', '']) {
      assert.equal(isDevPath(path), false, path);
    }
  });
});
