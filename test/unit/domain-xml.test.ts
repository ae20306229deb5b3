import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { DomainXmlError, parseDomainXml, type DiskRef } from '../../src/domain/disks.js';

/** Fixtures live in the source tree; compiled tests run from dist/test/unit. */
function fixture(name: string): string {
  return readFileSync(new URL(`../../../test/fixtures/xml/${name}`, import.meta.url), 'utf8');
}

/** A minimal domain around the given <devices> content. */
function domainWith(devices: string, name = 'vm1'): string {
  return `<domain type='kvm'>
  <name>${name}</name>
  <uuid>11111111-2222-4333-8444-555555555555</uuid>
  <memory unit='KiB'>1048576</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>${devices}</devices>
</domain>`;
}

function pathsOf(refs: DiskRef[]): string[] {
  return refs.map((ref) => (ref.source.kind === 'path' ? ref.source.path : `${ref.source.pool}/${ref.source.volume}`));
}

function refFor(refs: DiskRef[], path: string): DiskRef {
  const found = refs.filter((ref) => ref.source.kind === 'path' && ref.source.path === path);
  assert.equal(found.length, 1, `expected exactly one ref for ${path}, got ${found.length}`);
  return found[0]!;
}

function assertDomainXmlError(xml: unknown, pattern: RegExp): void {
  assert.throws(
    () => parseDomainXml(xml as string),
    (error: unknown) => {
      assert.ok(error instanceof DomainXmlError, `expected DomainXmlError, got ${String(error)}`);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

describe('parseDomainXml: live QEMU domain XML', () => {
  const live = parseDomainXml(fixture('live-qemu-web01.xml'));

  test('reads the name and uuid', () => {
    assert.equal(live.name, 'web01');
    assert.equal(live.uuid, '4dea22b3-1d52-d8f3-2516-782e98ab3fa0');
  });

  test('returns every source that may be an LV in document order, and nothing else', () => {
    assert.deepEqual(live.disks, [
      { source: { kind: 'path', path: '/dev/vmvg/web01-root' }, mode: 'ex', role: 'disk', target: 'vda', alias: 'virtio-disk0', device: 'disk' },
      { source: { kind: 'path', path: '/dev/mapper/vmvg-web01--data' }, mode: 'ex', role: 'disk', target: 'vdb', alias: 'virtio-disk1', device: 'disk' },
      { source: { kind: 'path', path: '/dev/vmvg/web01-app' }, mode: 'ex', role: 'disk', target: 'vdc', alias: 'virtio-disk2', device: 'disk' },
      { source: { kind: 'path', path: '/dev/vmvg/web01-app-new' }, mode: 'ex', role: 'mirror', target: 'vdc', alias: 'virtio-disk2', device: 'disk' },
      { source: { kind: 'path', path: '/dev/vmvg/web01-sys' }, mode: 'ex', role: 'disk', target: 'vdd', alias: 'virtio-disk3', device: 'disk' },
      { source: { kind: 'path', path: '/dev/vmvg/tmpl-debian12' }, mode: 'sh', role: 'backing', target: 'vdd', alias: 'virtio-disk3', device: 'disk' },
      { source: { kind: 'path', path: '/dev/vmvg/tmpl-base' }, mode: 'sh', role: 'backing', target: 'vdd', alias: 'virtio-disk3', device: 'disk' },
      { source: { kind: 'path', path: '/dev/vmvg/cluster-quorum' }, mode: 'sh', role: 'disk', target: 'vde', alias: 'virtio-disk4', device: 'disk' },
      { source: { kind: 'path', path: '/dev/vmvg/iso-library' }, mode: 'sh', role: 'disk', target: 'vdf', alias: 'virtio-disk5', device: 'disk' },
      { source: { kind: 'path', path: '/dev/mapper/vmvg-web01--lun' }, mode: 'ex', role: 'disk', target: 'sda', alias: 'scsi0-0-0-0', device: 'lun' },
      { source: { kind: 'path', path: '/var/lib/libvirt/images/web01-scratch.qcow2' }, mode: 'ex', role: 'disk', target: 'vdg', alias: 'virtio-disk6', device: 'disk' },
      { source: { kind: 'volume', pool: 'vmpool', volume: 'web01-logs' }, mode: 'ex', role: 'disk', target: 'vdh', alias: 'virtio-disk7', device: 'disk' },
    ]);
  });

  test('never returns an empty path (the seed hook collected "" for every source without dev)', () => {
    for (const ref of live.disks) {
      if (ref.source.kind === 'path') {
        assert.notEqual(ref.source.path, '');
      } else {
        assert.notEqual(ref.source.pool, '');
        assert.notEqual(ref.source.volume, '');
      }
    }
  });

  test('a <shareable/> disk and a <readonly/> disk want sh', () => {
    assert.equal(refFor(live.disks, '/dev/vmvg/cluster-quorum').mode, 'sh');
    assert.equal(refFor(live.disks, '/dev/vmvg/iso-library').mode, 'sh');
  });

  test('both images of the backing chain are role backing, mode sh, owned by the top disk', () => {
    const backing = live.disks.filter((ref) => ref.role === 'backing');
    assert.deepEqual(pathsOf(backing), ['/dev/vmvg/tmpl-debian12', '/dev/vmvg/tmpl-base']);
    for (const ref of backing) {
      assert.equal(ref.mode, 'sh');
      assert.equal(ref.target, 'vdd');
      assert.equal(ref.alias, 'virtio-disk3');
    }
    assert.equal(refFor(live.disks, '/dev/vmvg/web01-sys').mode, 'ex');
  });

  test('the block-copy mirror is reported with the mode of its disk', () => {
    const mirror = refFor(live.disks, '/dev/vmvg/web01-app-new');
    assert.equal(mirror.role, 'mirror');
    assert.equal(mirror.mode, refFor(live.disks, '/dev/vmvg/web01-app').mode);
    assert.equal(mirror.target, 'vdc');
  });

  test('the <source> nested in <reservations> is not taken for a disk source', () => {
    const lunRefs = live.disks.filter((ref) => ref.target === 'sda');
    assert.deepEqual(pathsOf(lunRefs), ['/dev/mapper/vmvg-web01--lun']);
    assert.ok(!pathsOf(live.disks).some((path) => path.includes('pr-helper')));
  });

  test('skips the cdrom without source and the network disk, but keeps the file disk for the resolver', () => {
    const targets = new Set(live.disks.map((ref) => ref.target));
    assert.ok(!targets.has('sdb'), 'empty cdrom');
    assert.ok(targets.has('vdg'), 'file disk under /var/lib/libvirt/images: it may be a link to an LV');
    assert.ok(!targets.has('vdi'), 'rbd network disk');
  });

  test('a volume disk is reported as pool and volume', () => {
    const volumes = live.disks.filter((ref) => ref.source.kind === 'volume');
    assert.equal(volumes.length, 1);
    assert.deepEqual(volumes[0]!.source, { kind: 'volume', pool: 'vmpool', volume: 'web01-logs' });
  });

  test('ignores <source> elements of other devices (interface, serial, console)', () => {
    assert.ok(!pathsOf(live.disks).some((path) => path.startsWith('/dev/pts')));
  });
});

describe('parseDomainXml: inactive config XML', () => {
  const config = parseDomainXml(fixture('inactive-db01.xml'));

  test('canonicalises an upper-case uuid', () => {
    assert.equal(config.name, 'db01');
    assert.equal(config.uuid, '9f3c2a1b-7d4e-4b5a-8c6d-0e1f2a3b4c5d');
  });

  test('has no aliases, and omits the field rather than setting it to undefined', () => {
    for (const ref of config.disks) {
      assert.ok(!('alias' in ref), `${JSON.stringify(ref)} has an alias key`);
    }
  });

  test('keeps every path form for later resolution, including /dev/dm-N and a block cdrom', () => {
    assert.deepEqual(pathsOf(config.disks), [
      '/dev/disk/by-id/dm-name-db--vg-db01--root',
      '/dev/db-vg/db01-wal',
      '/dev/dm-7',
      '/dev/sr0',
      '/dev/db-vg/db01-floppy',
    ]);
  });

  test('a file disk whose source is under /dev is a path', () => {
    assert.deepEqual(refFor(config.disks, '/dev/db-vg/db01-wal'), {
      source: { kind: 'path', path: '/dev/db-vg/db01-wal' },
      mode: 'ex',
      role: 'disk',
      target: 'vdb',
      device: 'disk',
    });
  });

  test('a cdrom is sh; a floppy without <readonly/> is ex', () => {
    assert.equal(refFor(config.disks, '/dev/sr0').mode, 'sh');
    assert.equal(refFor(config.disks, '/dev/sr0').device, 'cdrom');
    assert.equal(refFor(config.disks, '/dev/db-vg/db01-floppy').mode, 'ex');
    assert.equal(refFor(config.disks, '/dev/db-vg/db01-floppy').device, 'floppy');
  });
});

describe('parseDomainXml: Test driver and minimal domains', () => {
  test('the Test driver default domain has only a file disk, kept for the resolver to classify', () => {
    const domain = parseDomainXml(fixture('test-driver-default.xml'));
    assert.equal(domain.name, 'test');
    assert.equal(domain.uuid, '6695eb01-f6a4-8304-79aa-97f2502e193f');
    assert.deepEqual(pathsOf(domain.disks), ['/guest/diskimage1']);
  });

  test('a domain without <devices> has no refs', () => {
    const domain = parseDomainXml(
      `<domain type='test'><name>bare</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e1940</uuid><memory>1024</memory><os><type>hvm</type></os></domain>`,
    );
    assert.deepEqual(domain, { name: 'bare', uuid: '6695eb01-f6a4-8304-79aa-97f2502e1940', disks: [] });
  });

  test('accepts an XML declaration and a byte-order mark', () => {
    const xml = `\uFEFF<?xml version="1.0" encoding="UTF-8"?>\n${domainWith(`<disk type='block'><source dev='/dev/vg/lv'/></disk>`)}`;
    assert.deepEqual(pathsOf(parseDomainXml(xml).disks), ['/dev/vg/lv']);
  });
});

describe('parseDomainXml: disk forms', () => {
  test('a disk without a type attribute is a file disk (libvirt default)', () => {
    const domain = parseDomainXml(
      domainWith(`<disk device='disk'><source file='/dev/vg/untyped'/><target dev='vda'/></disk>
                  <disk><source file='/srv/images/untyped.img'/><target dev='vdb'/></disk>`),
    );
    assert.deepEqual(pathsOf(domain.disks), ['/dev/vg/untyped', '/srv/images/untyped.img']);
    assert.deepEqual(domain.disks.map((ref) => ref.role), ['disk', 'disk']);
  });

  test('a disk without a device attribute is device "disk"', () => {
    const domain = parseDomainXml(domainWith(`<disk type='block'><source dev='/dev/vg/lv'/></disk>`));
    assert.equal(domain.disks[0]!.device, 'disk');
    assert.equal(domain.disks[0]!.mode, 'ex');
  });

  test('a file path written with duplicate slashes still counts as under /dev', () => {
    const domain = parseDomainXml(domainWith(`<disk type='file'><source file='//dev//vg/lv'/></disk>`));
    assert.deepEqual(pathsOf(domain.disks), ['//dev//vg/lv']);
  });

  test('any absolute file path is kept ("/dev" alone, "/devices/..."), a relative one is not', () => {
    const domain = parseDomainXml(
      domainWith(`<disk type='file'><source file='/dev'/></disk><disk type='file'><source file='/devices/x.img'/></disk>
                  <disk type='file'><source file='images/relative.img'/></disk>`),
    );
    assert.deepEqual(pathsOf(domain.disks), ['/dev', '/devices/x.img']);
  });

  test('skips block disks with no source, no dev or an empty dev, and volumes missing pool or volume', () => {
    const domain = parseDomainXml(
      domainWith(`
        <disk type='block' device='cdrom'><target dev='hdc'/><readonly/></disk>
        <disk type='block'><source/><target dev='vda'/></disk>
        <disk type='block'><source dev=''/><target dev='vdb'/></disk>
        <disk type='block'><source file='/dev/vg/wrong-attribute'/><target dev='vdc'/></disk>
        <disk type='volume'><source pool='p'/><target dev='vdd'/></disk>
        <disk type='volume'><source volume='v'/><target dev='vde'/></disk>
        <disk type='volume'><source pool='' volume='v'/><target dev='vdf'/></disk>`),
    );
    assert.deepEqual(domain.disks, []);
  });

  test('skips nvme, vhostuser, dir and network disks', () => {
    const domain = parseDomainXml(
      domainWith(`
        <disk type='nvme' device='disk'><source type='pci' managed='yes' namespace='1'><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source><target dev='vda'/></disk>
        <disk type='vhostuser' device='disk'><source type='unix' path='/tmp/vhost-blk.sock'><reconnect enabled='yes' timeout='10'/></source><target dev='vdb'/></disk>
        <disk type='dir' device='floppy'><source dir='/dev/shm/floppy'/><target dev='fda'/></disk>
        <disk type='network' device='disk'><source protocol='iscsi' name='iqn.2013-07.com.example:iscsi-nopool/1'><host name='example.com' port='3260'/></source><target dev='vdc'/></disk>`),
    );
    assert.deepEqual(domain.disks, []);
  });

  test('the first <source> of a disk is its source, as in libvirt', () => {
    const domain = parseDomainXml(
      domainWith(`<disk type='block'><source dev='/dev/vg/first'/><source dev='/dev/vg/second'/></disk>`),
    );
    assert.deepEqual(pathsOf(domain.disks), ['/dev/vg/first']);
  });

  test('<readonly/> and <shareable/> together want sh; lun devices follow the same flags', () => {
    const domain = parseDomainXml(
      domainWith(`
        <disk type='block' device='lun'><source dev='/dev/vg/shared-lun'/><shareable/><target dev='sda' bus='scsi'/></disk>
        <disk type='block' device='disk'><source dev='/dev/vg/both'/><readonly/><shareable/><target dev='vda'/></disk>
        <disk type='block' device='disk'><source dev='/dev/vg/transient'/><transient/><target dev='vdb'/></disk>`),
    );
    assert.equal(refFor(domain.disks, '/dev/vg/shared-lun').mode, 'sh');
    assert.equal(refFor(domain.disks, '/dev/vg/both').mode, 'sh');
    assert.equal(refFor(domain.disks, '/dev/vg/transient').mode, 'ex');
  });

  test('a readonly/shareable disk passes its mode to its mirror, not to its backing images', () => {
    const domain = parseDomainXml(
      domainWith(`
        <disk type='block' device='disk'>
          <source dev='/dev/vg/shared-top'/>
          <backingStore type='block'><format type='raw'/><source dev='/dev/vg/shared-base'/><backingStore/></backingStore>
          <mirror type='block' job='copy'><format type='raw'/><source dev='/dev/vg/shared-copy'/></mirror>
          <shareable/>
          <target dev='vda'/>
        </disk>`),
    );
    assert.deepEqual(
      domain.disks.map((ref) => [ref.role, ref.mode]),
      [['disk', 'sh'], ['backing', 'sh'], ['mirror', 'sh']],
    );
  });

  test('the same path used twice is returned twice (deduplication happens per LV later)', () => {
    const domain = parseDomainXml(
      domainWith(`
        <disk type='block'><source dev='/dev/vg/base'/><readonly/><target dev='vda'/></disk>
        <disk type='block'><source dev='/dev/vg/top'/>
          <backingStore type='block'><format type='raw'/><source dev='/dev/vg/base'/><backingStore/></backingStore>
          <target dev='vdb'/></disk>
        <disk type='block'><source dev='/dev/vg/base'/><target dev='vdc'/></disk>`),
    );
    assert.deepEqual(
      domain.disks.map((ref) => [pathsOf([ref])[0], ref.role, ref.mode, ref.target]),
      [
        ['/dev/vg/base', 'disk', 'sh', 'vda'],
        ['/dev/vg/top', 'disk', 'ex', 'vdb'],
        ['/dev/vg/base', 'backing', 'sh', 'vdb'],
        ['/dev/vg/base', 'disk', 'ex', 'vdc'],
      ],
    );
  });

  test('disks of every <devices> element are read; <disk> elements elsewhere are not', () => {
    const xml = `<domain type='kvm'>
      <name>vm1</name><uuid>11111111-2222-4333-8444-555555555555</uuid>
      <metadata>
        <app:config xmlns:app='urn:example:app'>
          <disk type='block'><source dev='/dev/vg/in-metadata'/></disk>
          <devices><disk type='block'><source dev='/dev/vg/in-metadata-devices'/></disk></devices>
        </app:config>
      </metadata>
      <devices><disk type='block'><source dev='/dev/vg/one'/></disk></devices>
      <disk type='block'><source dev='/dev/vg/outside-devices'/></disk>
      <devices><disk type='block'><source dev='/dev/vg/two'/></disk></devices>
    </domain>`;
    assert.deepEqual(pathsOf(parseDomainXml(xml).disks), ['/dev/vg/one', '/dev/vg/two']);
  });

  test('elements named like JavaScript object internals do not disturb parsing', () => {
    const xml = domainWith(`<disk type='block'><source dev='/dev/vg/lv'/><__proto__ x='1'/><constructor/><hasOwnProperty/><toString/></disk>`).replace(
      '<devices>',
      `<metadata><prototype/><__proto__><polluted>yes</polluted></__proto__></metadata><devices>`,
    );
    const domain = parseDomainXml(xml);
    assert.deepEqual(pathsOf(domain.disks), ['/dev/vg/lv']);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });
});

describe('parseDomainXml: backing chains', () => {
  test('an empty <backingStore/> ends the chain; a backingStore without type is a terminator', () => {
    const domain = parseDomainXml(
      domainWith(`<disk type='block'><source dev='/dev/vg/top'/>
        <backingStore><backingStore type='block'><source dev='/dev/vg/never-reached'/></backingStore></backingStore>
        <target dev='vda'/></disk>`),
    );
    assert.deepEqual(pathsOf(domain.disks), ['/dev/vg/top']);
  });

  test('file images in the chain count wherever they are; network images do not, but the chain continues', () => {
    const domain = parseDomainXml(
      domainWith(`<disk type='file'><source file='/var/lib/libvirt/images/overlay.qcow2'/>
        <backingStore type='file'><format type='qcow2'/><source file='/var/lib/libvirt/images/mid.qcow2'/>
          <backingStore type='network'><format type='qcow2'/><source protocol='nbd' name='x'><host name='h'/></source>
            <backingStore type='file'><format type='qcow2'/><source file='/dev/vg/base-as-file'/>
              <backingStore type='block'><format type='raw'/><source dev='/dev/vg/base-block'/><backingStore/></backingStore>
            </backingStore>
          </backingStore>
        </backingStore>
        <target dev='vda'/></disk>`),
    );
    assert.deepEqual(
      domain.disks.map((ref) => [pathsOf([ref])[0], ref.role, ref.mode]),
      [
        ['/var/lib/libvirt/images/overlay.qcow2', 'disk', 'ex'],
        ['/var/lib/libvirt/images/mid.qcow2', 'backing', 'sh'],
        ['/dev/vg/base-as-file', 'backing', 'sh'],
        ['/dev/vg/base-block', 'backing', 'sh'],
      ],
    );
  });

  test('a typed backingStore without a source gives no ref and the chain continues below it', () => {
    const domain = parseDomainXml(
      domainWith(`<disk type='block'><source dev='/dev/vg/top'/>
        <backingStore type='block'><format type='qcow2'/>
          <backingStore type='block'><format type='raw'/><source dev='/dev/vg/below'/><backingStore/></backingStore>
        </backingStore><target dev='vda'/></disk>`),
    );
    assert.deepEqual(pathsOf(domain.disks), ['/dev/vg/top', '/dev/vg/below']);
  });

  test('a volume image in the chain is reported as a volume', () => {
    const domain = parseDomainXml(
      domainWith(`<disk type='block'><source dev='/dev/vg/top'/>
        <backingStore type='volume'><format type='raw'/><source pool='p' volume='base'/><backingStore/></backingStore>
        <target dev='vda'/></disk>`),
    );
    assert.deepEqual(domain.disks[1], {
      source: { kind: 'volume', pool: 'p', volume: 'base' },
      mode: 'sh',
      role: 'backing',
      target: 'vda',
      device: 'disk',
    });
  });

  test('a chain of 500 images is read completely, in order', () => {
    const depth = 500;
    let chain = '<backingStore/>';
    for (let i = depth; i >= 1; i -= 1) {
      chain = `<backingStore type='block' index='${i + 1}'><format type='qcow2'/><source dev='/dev/vg/layer${i}'/>${chain}</backingStore>`;
    }
    const domain = parseDomainXml(domainWith(`<disk type='block'><source dev='/dev/vg/top'/>${chain}<target dev='vda'/></disk>`));
    const expected = ['/dev/vg/top', ...Array.from({ length: depth }, (_, i) => `/dev/vg/layer${i + 1}`)];
    assert.deepEqual(pathsOf(domain.disks), expected);
    assert.ok(domain.disks.slice(1).every((ref) => ref.role === 'backing' && ref.mode === 'sh'));
  });

  test('nesting beyond any depth libvirt produces is refused with a DomainXmlError', () => {
    const depth = 5000;
    const xml = domainWith(`<disk type='block'><source dev='/dev/vg/top'/>${'<backingStore type="block">'.repeat(depth)}${'</backingStore>'.repeat(depth)}</disk>`);
    assertDomainXmlError(xml, /^domain XML is not well-formed: .*nested/i);
  });
});

describe('parseDomainXml: mirrors', () => {
  test('the old form <mirror file=...> names a file, reported as a path wherever it is', () => {
    const domain = parseDomainXml(
      domainWith(`<disk type='block'><source dev='/dev/vg/src'/><mirror file='/dev/vg/copy' format='raw' job='copy'/><target dev='vda'/></disk>
                  <disk type='file'><source file='/dev/vg/src2'/><mirror file='/var/lib/libvirt/images/copy.img' format='raw' job='copy'/><target dev='vdb'/></disk>`),
    );
    assert.deepEqual(
      domain.disks.map((ref) => [pathsOf([ref])[0], ref.role]),
      [
        ['/dev/vg/src', 'disk'],
        ['/dev/vg/copy', 'mirror'],
        ['/dev/vg/src2', 'disk'],
        ['/var/lib/libvirt/images/copy.img', 'mirror'],
      ],
    );
  });

  test('a file mirror with both the file attribute and <source> is reported once', () => {
    const domain = parseDomainXml(
      domainWith(`<disk type='file'><source file='/dev/vg/src'/>
        <mirror type='file' file='/dev/vg/copy' format='raw' job='copy' ready='yes'><format type='raw'/><source file='/dev/vg/copy'/><backingStore/></mirror>
        <target dev='vda'/></disk>`),
    );
    assert.deepEqual(pathsOf(domain.disks.filter((ref) => ref.role === 'mirror')), ['/dev/vg/copy']);
  });

  test("a shallow copy's mirror chain is reported as backing images", () => {
    const domain = parseDomainXml(
      domainWith(`<disk type='block'><source dev='/dev/vg/top'/>
        <backingStore type='block'><format type='raw'/><source dev='/dev/vg/base'/><backingStore/></backingStore>
        <mirror type='block' job='copy'><format type='qcow2'/><source dev='/dev/vg/top-copy'/>
          <backingStore type='block'><format type='raw'/><source dev='/dev/vg/base'/><backingStore/></backingStore>
        </mirror><target dev='vda'/></disk>`),
    );
    assert.deepEqual(
      domain.disks.map((ref) => [pathsOf([ref])[0], ref.role, ref.mode]),
      [
        ['/dev/vg/top', 'disk', 'ex'],
        ['/dev/vg/base', 'backing', 'sh'],
        ['/dev/vg/top-copy', 'mirror', 'ex'],
        ['/dev/vg/base', 'backing', 'sh'],
      ],
    );
  });

  test('an active-commit mirror (a volume) and a network mirror', () => {
    const domain = parseDomainXml(
      domainWith(`<disk type='block'><source dev='/dev/vg/a'/><mirror type='volume' job='active-commit'><format type='raw'/><source pool='p' volume='v'/></mirror><target dev='vda'/></disk>
                  <disk type='block'><source dev='/dev/vg/b'/><mirror type='network' job='copy'><format type='raw'/><source protocol='nbd' name='e'><host name='h'/></source></mirror><target dev='vdb'/></disk>`),
    );
    assert.deepEqual(
      domain.disks.map((ref) => ref.role),
      ['disk', 'mirror', 'disk'],
    );
    assert.deepEqual(domain.disks[1]!.source, { kind: 'volume', pool: 'p', volume: 'v' });
  });
});

describe('parseDomainXml: text and entities', () => {
  test('decodes predefined entities and character references in paths and names', () => {
    const xml = domainWith(`<disk type='block'><source dev='/dev/vg/it&apos;s&amp;&#x2B;&#43;&quot;&lt;&gt;'/></disk>`, 'a&amp;b');
    const domain = parseDomainXml(xml);
    assert.equal(domain.name, 'a&b');
    assert.deepEqual(pathsOf(domain.disks), [`/dev/vg/it's&++"<>`]);
  });

  test('keeps a path exactly as written, spaces included', () => {
    const domain = parseDomainXml(domainWith(`<disk type='block'><source dev=' /dev/vg/lv '/></disk>`));
    assert.deepEqual(pathsOf(domain.disks), [' /dev/vg/lv ']);
  });

  test('reads literal tabs and line breaks in attribute values as spaces, as XML requires', () => {
    const domain = parseDomainXml(domainWith(`<disk type='block'><source dev='/dev/vg/a\tb\nc'/></disk>`));
    assert.deepEqual(pathsOf(domain.disks), ['/dev/vg/a b c']);
  });

  test('a name made of digits stays a string', () => {
    const domain = parseDomainXml(domainWith('', '007'));
    assert.equal(domain.name, '007');
  });

  test('CDATA in the name is taken verbatim, entities outside it are decoded', () => {
    const domain = parseDomainXml(domainWith('', 'x&amp;<![CDATA[&amp;]]>'));
    assert.equal(domain.name, 'x&&amp;');
  });

  test('never expands DOCTYPE-declared entities', () => {
    const xml = `<!DOCTYPE domain [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
      ${domainWith('', '&lol2;')}`;
    assertDomainXmlError(xml, /&lol2;.*not one of XML's predefined entities/);
  });

  test('never reads external entities', () => {
    const xml = `<!DOCTYPE domain [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
      ${domainWith(`<disk type='block'><source dev='/dev/vg/&xxe;'/></disk>`)}`;
    // Refused either when the declaration is read or when the reference is decoded.
    assertDomainXmlError(xml, /^domain XML (is not well-formed: External entities|of "vm1" cannot be read: .*&xxe;)/);
  });

  test("a bare '&' in an attribute value is refused", () => {
    assertDomainXmlError(domainWith(`<disk type='block'><source dev='/dev/vg/a&b'/></disk>`), /'&' that does not start/);
  });

  test('a character reference to a non-XML character is refused', () => {
    assertDomainXmlError(domainWith(`<disk type='block'><source dev='/dev/vg/a&#0;'/></disk>`), /&#0;.*not an XML character/);
  });
});

describe('parseDomainXml: errors', () => {
  test('malformed XML gives a DomainXmlError with the parser reason and position', () => {
    assertDomainXmlError(fixture('malformed.xml'), /^domain XML is not well-formed: .*disk.*\(line \d+, column \d+\)$/);
  });

  test('XML with no uuid gives a DomainXmlError naming the domain', () => {
    assertDomainXmlError(fixture('no-uuid.xml'), /^domain XML of "nouuid" has no <uuid>$/);
  });

  test('an invalid uuid is refused, naming the domain and the value', () => {
    assertDomainXmlError(domainWith('').replace('11111111-2222-4333-8444-555555555555', 'not-a-uuid'), /^domain XML of "vm1" has an invalid <uuid> "not-a-uuid"$/);
    assertDomainXmlError(domainWith('').replace('11111111-2222-4333-8444-555555555555', '11111111-2222-4333-8444-55555555555'), /invalid <uuid>/);
    assertDomainXmlError(domainWith('').replace('11111111-2222-4333-8444-555555555555', '11111111-2222-4333-8444-5555555555556'), /invalid <uuid>/);
    assertDomainXmlError(domainWith('').replace('11111111-2222-4333-8444-555555555555', ''), /invalid <uuid> ""/);
  });

  test('accepts the uuid spellings libvirt accepts, returning the canonical form', () => {
    for (const spelling of ['11111111222243338444555555555555', ' 11111111-2222-4333-8444-555555555555\n', '11 11 11 11-2222-4333-8444-5555-5555-5555']) {
      const xml = domainWith('').replace('11111111-2222-4333-8444-555555555555', spelling);
      assert.equal(parseDomainXml(xml).uuid, '11111111-2222-4333-8444-555555555555', spelling);
    }
  });

  test('no name, or an empty name', () => {
    assertDomainXmlError(`<domain><uuid>11111111-2222-4333-8444-555555555555</uuid></domain>`, /^domain XML has no <name>$/);
    assertDomainXmlError(domainWith('', ''), /^domain XML has an empty <name>$/);
    assertDomainXmlError(domainWith('', '  '), /^domain XML has an empty <name>$/);
  });

  test('a root element other than <domain>', () => {
    assertDomainXmlError(`<domainsnapshot><domain><name>x</name></domain></domainsnapshot>`, /root element <domainsnapshot>, expected <domain>/);
    assertDomainXmlError(`<ns:domain xmlns:ns='urn:x'><name>x</name></ns:domain>`, /root element <ns:domain>/);
  });

  test('two root elements', () => {
    assertDomainXmlError(`${domainWith('')}${domainWith('')}`, /^domain XML is not well-formed: .*root/i);
  });

  test('empty input, text, and values that are not strings', () => {
    assertDomainXmlError('', /^domain XML is not well-formed: the document is empty$/);
    assertDomainXmlError('  \n', /document is empty/);
    assertDomainXmlError('hello', /^domain XML is not well-formed:/);
    assertDomainXmlError(undefined, /^domain XML must be a string, got undefined$/);
    assertDomainXmlError(null, /got null/);
    assertDomainXmlError(Buffer.from(domainWith('')), /got object/);
  });

  test('unclosed, mismatched and duplicate-attribute XML', () => {
    assertDomainXmlError('<domain><name>x</name>', /not well-formed: Unclosed tag 'domain'/);
    assertDomainXmlError(domainWith(`<disk type='block' type='file'/>`), /not well-formed: .*repeated/);
    assertDomainXmlError(domainWith('').replace('</domain>', '</domian>'), /not well-formed/);
  });

  test('every truncation of a real domain XML either parses or throws DomainXmlError, never anything else', () => {
    const xml = fixture('live-qemu-web01.xml');
    for (let length = 0; length <= xml.length; length += 1) {
      try {
        parseDomainXml(xml.slice(0, length));
      } catch (error) {
        assert.ok(error instanceof DomainXmlError, `length ${length}: ${String(error)}`);
      }
    }
  });
});
