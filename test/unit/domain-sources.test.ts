import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { parseDomainXml, type DiskRef } from '../../src/domain/disks.js';

/** Fixtures live in the source tree; compiled tests run from dist/test/unit. */
function fixture(name: string): string {
  return readFileSync(new URL(`../../../test/fixtures/xml/${name}`, import.meta.url), 'utf8');
}

function domainWith(os: string, devices: string): string {
  return `<domain type='kvm'><name>vm1</name><uuid>11111111-2222-4333-8444-555555555555</uuid>
  <memory unit='KiB'>1048576</memory><os><type arch='x86_64'>hvm</type>${os}</os><devices>${devices}</devices></domain>`;
}

/** [path or pool/volume, role, mode, target or alias] of each ref, in order. */
function summary(refs: DiskRef[]): [string, string, string, string | undefined][] {
  return refs.map((ref) => [
    ref.source.kind === 'path' ? ref.source.path : `${ref.source.pool}/${ref.source.volume}`,
    ref.role,
    ref.mode,
    ref.target ?? ref.alias,
  ]);
}

describe('parseDomainXml: qcow2 external data files (<dataStore>)', () => {
  const domain = parseDomainXml(fixture('live-datastore-app02.xml'));

  test('reports every data file with the layer it belongs to, after the image', () => {
    assert.deepEqual(
      summary(domain.disks.filter((ref) => ref.role !== 'nvram')),
      [
        ['/dev/appvg/app02-root-meta', 'disk', 'ex', 'vda'],
        ['/dev/appvg/app02-root-data', 'datastore', 'ex', 'vda'],
        ['/dev/appvg/app02-shared-meta', 'disk', 'sh', 'vdb'],
        ['/dev/mapper/appvg-app02--shared--data', 'datastore', 'sh', 'vdb'],
        ['/srv/overlays/app02-sys.qcow2', 'disk', 'ex', 'vdc'],
        ['/dev/appvg/golden-meta', 'backing', 'sh', 'vdc'],
        ['/dev/appvg/golden-data', 'datastore', 'sh', 'vdc'],
        ['/dev/appvg/app02-scratch-data', 'datastore', 'ex', 'vdd'],
        ['/dev/appvg/app02-logs-meta', 'disk', 'ex', 'vde'],
        ['/dev/appvg/app02-db', 'disk', 'ex', 'vdf'],
        ['/dev/appvg/app02-db-new-meta', 'mirror', 'ex', 'vdf'],
        ['/dev/appvg/app02-db-new-data', 'datastore', 'ex', 'vdf'],
      ],
    );
  });

  test('a data file carries the alias and device of its disk, so a hot-unplug releases it too', () => {
    const data = domain.disks.find((ref) => ref.source.kind === 'path' && ref.source.path === '/dev/appvg/app02-root-data');
    assert.equal(data?.alias, 'virtio-disk0');
    assert.equal(data?.device, 'disk');
  });

  test('a data file of a network image is read; a network data file is not a source', () => {
    const vdd = domain.disks.filter((ref) => ref.target === 'vdd');
    assert.deepEqual(summary(vdd), [['/dev/appvg/app02-scratch-data', 'datastore', 'ex', 'vdd']]);
    const vde = domain.disks.filter((ref) => ref.target === 'vde');
    assert.deepEqual(summary(vde), [['/dev/appvg/app02-logs-meta', 'disk', 'ex', 'vde']]);
  });

  test('a file data store, and a read-only disk whose data file wants sh', () => {
    const refs = parseDomainXml(
      domainWith(
        '',
        `<disk type='file'><source file='/dev/vg/img'><dataStore type='file'><format type='raw'/><source file='/dev/vg/img-data'/></dataStore></source><target dev='vda'/><readonly/></disk>`,
      ),
    ).disks;
    assert.deepEqual(summary(refs), [
      ['/dev/vg/img', 'disk', 'sh', 'vda'],
      ['/dev/vg/img-data', 'datastore', 'sh', 'vda'],
    ]);
  });

  test('a data store without a type or without a source gives nothing', () => {
    const refs = parseDomainXml(
      domainWith(
        '',
        `<disk type='block'><source dev='/dev/vg/a'><dataStore><source dev='/dev/vg/untyped'/></dataStore></source></disk>
         <disk type='block'><source dev='/dev/vg/b'><dataStore type='block'><format type='raw'/></dataStore></source></disk>`,
      ),
    ).disks;
    assert.deepEqual(summary(refs).map(([path]) => path), ['/dev/vg/a', '/dev/vg/b']);
  });

  test('a data store outside the disk <source> (a sibling of it) is not taken', () => {
    const refs = parseDomainXml(
      domainWith('', `<disk type='block'><source dev='/dev/vg/a'/><dataStore type='block'><source dev='/dev/vg/stray'/></dataStore></disk>`),
    ).disks;
    assert.deepEqual(summary(refs).map(([path]) => path), ['/dev/vg/a']);
  });
});

describe('parseDomainXml: UEFI NVRAM', () => {
  test('<nvram type="block"> with a source is an nvram ref wanting ex', () => {
    const nvram = parseDomainXml(fixture('live-datastore-app02.xml')).disks.filter((ref) => ref.role === 'nvram');
    assert.deepEqual(nvram, [{ source: { kind: 'path', path: '/dev/appvg/app02-vars' }, mode: 'ex', role: 'nvram', device: 'nvram' }]);
  });

  test('the older text form names the store (a /dev path here)', () => {
    const domain = parseDomainXml(fixture('live-pmem-nv03.xml'));
    assert.deepEqual(
      summary(domain.disks.filter((ref) => ref.role === 'nvram')),
      [['/dev/pmvg/nv03-vars', 'nvram', 'ex', undefined]],
    );
  });

  test('a file NVRAM is kept for the resolver; network, empty and relative ones are not sources', () => {
    const paths = (os: string): string[] => summary(parseDomainXml(domainWith(os, '')).disks).map(([path]) => path);
    assert.deepEqual(paths(`<nvram type='file'><source file='/var/lib/libvirt/qemu/nvram/vm1_VARS.fd'/></nvram>`), [
      '/var/lib/libvirt/qemu/nvram/vm1_VARS.fd',
    ]);
    assert.deepEqual(paths(`<nvram>/var/lib/libvirt/qemu/nvram/vm1_VARS.fd</nvram>`), ['/var/lib/libvirt/qemu/nvram/vm1_VARS.fd']);
    assert.deepEqual(paths(`<nvram type='network'><source protocol='iscsi' name='iqn.2013-07.com.example:vars/0'><host name='192.0.2.9'/></source></nvram>`), []);
    assert.deepEqual(paths(`<nvram/>`), []);
    assert.deepEqual(paths(`<nvram>vars.fd</nvram>`), []);
  });

  test('the read-only loader is not taken for the NVRAM, and an <nvram> outside <os> is ignored', () => {
    const refs = parseDomainXml(
      domainWith(`<loader readonly='yes' type='pflash'>/dev/vg/code</loader>`, `<nvram><address type='spapr-vio' reg='0x3000'/></nvram>`),
    ).disks;
    assert.deepEqual(refs, []);
  });
});

describe('parseDomainXml: persistent-memory devices', () => {
  const domain = parseDomainXml(fixture('live-pmem-nv03.xml'));

  test('nvdimm and virtio-pmem paths are reported with their alias; a plain dimm is not', () => {
    assert.deepEqual(
      summary(domain.disks.filter((ref) => ref.role === 'nvdimm' || ref.role === 'pmem')),
      [
        ['/dev/pmvg/nv03-pmem0', 'nvdimm', 'ex', 'nvdimm0'],
        ['/dev/mapper/pmvg-nv03--pmem--ro', 'nvdimm', 'sh', 'nvdimm1'],
        ['/var/lib/libvirt/pmem/nv03-vpmem.img', 'pmem', 'ex', 'virtiopmem0'],
      ],
    );
    assert.ok(!domain.disks.some((ref) => ref.alias === 'dimm0'));
  });

  test('the device field names the memory model', () => {
    assert.deepEqual(
      domain.disks.filter((ref) => ref.alias?.startsWith('nvdimm') || ref.alias?.startsWith('virtiopmem')).map((ref) => ref.device),
      ['nvdimm', 'nvdimm', 'virtio-pmem'],
    );
  });

  test('access="private" alone keeps ex: QEMU still opens the file for writing', () => {
    const refs = parseDomainXml(
      domainWith('', `<memory model='nvdimm' access='private'><source><path>/dev/vg/pm</path></source><target><size unit='KiB'>1024</size></target></memory>`),
    ).disks;
    assert.deepEqual(summary(refs), [['/dev/vg/pm', 'nvdimm', 'ex', undefined]]);
  });

  test('an nvdimm without a source path, or with a relative one, gives nothing', () => {
    const refs = parseDomainXml(
      domainWith(
        '',
        `<memory model='nvdimm'><target><size unit='KiB'>1024</size></target></memory>
         <memory model='nvdimm'><source><path>pm.img</path></source></memory>`,
      ),
    ).disks;
    assert.deepEqual(refs, []);
  });

  test('disks come first, then the NVRAM, then memory devices', () => {
    assert.deepEqual(
      domain.disks.map((ref) => ref.role),
      ['disk', 'nvram', 'nvdimm', 'nvdimm', 'pmem'],
    );
  });
});
