/**
 * The harness's own logic, without root or libvirt: the invariant checks over the sampled lock
 * history must catch what they claim to catch, and the busy guest's boot sector must hold together.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { blankBootSector, busyBootSector } from './boot-sector.js';
import { disksOfXml, guestXml, lvKeyOfDev } from './guest.js';
import { type LockSample, historyViolations, qemuLifetimes } from './lock-timeline.js';

const names = new Map([
  [1, 'src'],
  [2, 'dst'],
]);
const lvsOf = (domain: string) => (domain === 'vm' ? ['vg0/lv1'] : []);
const sample = (a: number, holders: LockSample['holders']): LockSample => ({ a, b: a + 5, holders });

describe('lock history checks', () => {
  test('an LV ex on one host while held on another is a violation', () => {
    const v = historyViolations([sample(100, { 'vg0/lv1': { 1: 'ex', 2: 'sh' } })], [], lvsOf, names, 0);
    assert.equal(v.length, 1);
    assert.match(v[0], /vg0\/lv1 is ex on one host while held on another: src ex, dst sh/);
  });

  test('both hosts sh is no conflict', () => {
    assert.deepEqual(historyViolations([sample(100, { 'vg0/lv1': { 1: 'sh', 2: 'sh' } })], [], lvsOf, names, 0), []);
  });

  test("a guest's QEMU on a host that holds nothing for its LV is a violation, named once", () => {
    const lives = qemuLifetimes([{ name: 'dst', hostId: 2, calls: [{ t: 50, domain: 'vm', op: 'start', subop: 'begin', extra: '-' }] }]);
    const samples = [sample(100, { 'vg0/lv1': { 1: 'ex' } }), sample(130, { 'vg0/lv1': { 1: 'ex' } })];
    const v = historyViolations(samples, lives, lvsOf, names, 0);
    assert.equal(v.length, 1);
    assert.match(v[0], /vm's QEMU exists on dst .* but dst holds no lock on vg0\/lv1 \(held by: src ex\)/);
  });

  test('samples outside a QEMU lifetime, or straddling its edges, do not count', () => {
    const calls = [
      { t: 100, domain: 'vm', op: 'start', subop: 'begin', extra: '-' },
      { t: 200, domain: 'vm', op: 'stopped', subop: 'end', extra: '-' },
    ];
    const lives = qemuLifetimes([{ name: 'src', hostId: 1, calls }]);
    assert.deepEqual(lives.map((l) => [l.start, l.end]), [[100, 200]]);
    const samples = [sample(90, {}), sample(97, {}), sample(198, {}), sample(250, {})];
    assert.deepEqual(historyViolations(samples, lives, lvsOf, names, 0), []);
    assert.equal(historyViolations([sample(150, {})], lives, lvsOf, names, 0).length, 1, 'a sample well inside counts');
  });

  test('a QEMU that has not stopped yet is alive until the end of the history', () => {
    const lives = qemuLifetimes([{ name: 'src', hostId: 1, calls: [{ t: 10, domain: 'vm', op: 'start', subop: 'begin', extra: '-' }] }]);
    assert.equal(lives[0].end, Infinity);
    assert.equal(historyViolations([sample(10_000, { 'vg0/lv1': { 1: 'sh' } })], lives, lvsOf, names, 0).length, 0);
  });
});

describe('guest XML', () => {
  test('disks round-trip through the XML the harness writes', () => {
    const xml = guestXml({ name: 'vm', uuid: '22222222-2222-4222-8222-222222222222', emulator: '/usr/bin/qemu-system-x86_64', disks: [{ dev: '/dev/vg0/lv1' }, { dev: '/dev/vg0/lv2', shareable: true }] });
    assert.deepEqual(disksOfXml(xml), [{ dev: '/dev/vg0/lv1', shareable: false }, { dev: '/dev/vg0/lv2', shareable: true }]);
    assert.match(xml, /cache='none'/);
    assert.equal(lvKeyOfDev('/dev/vg0/lv2'), 'vg0/lv2');
    assert.equal(lvKeyOfDev('/var/lib/libvirt/images/x.img'), undefined);
  });

  test("libvirt's live XML form (index attribute, alias) is read too", () => {
    const live = `<disk type='block' device='disk'><driver name='qemu' type='raw' cache='none'/><source dev='/dev/vg0/lv1' index='1'/><backingStore/><target dev='vda' bus='virtio'/><alias name='virtio-disk0'/></disk>`;
    assert.deepEqual(disksOfXml(live), [{ dev: '/dev/vg0/lv1', shareable: false }]);
  });
});

describe('boot sectors', () => {
  test('the busy sector is a bootable sector whose GDT descriptor and jumps point inside it', () => {
    const s = busyBootSector();
    assert.equal(s.length, 512);
    assert.deepEqual([s[510], s[511]], [0x55, 0xaa]);
    // lgdt [disp16] at offset 5: the descriptor it names must describe the 3-entry GDT in this sector.
    assert.deepEqual([...s.subarray(5, 8)], [0x0f, 0x01, 0x16]);
    const descriptor = s.readUInt16LE(8) - 0x7c00;
    assert.equal(s.readUInt16LE(descriptor), 23, 'GDT limit: three descriptors');
    const gdt = s.readUInt32LE(descriptor + 2) - 0x7c00;
    assert.equal(s.readBigUInt64LE(gdt + 8), 0x00cf9a000000ffffn, 'flat code segment');
    // The far jump lands on the 32-bit code, which starts by loading the data selector.
    const jump = s.indexOf(0xea);
    const target = s.readUInt16LE(jump + 1) - 0x7c00;
    assert.equal(s.readUInt16LE(jump + 3), 0x08);
    assert.deepEqual([...s.subarray(target, target + 4)], [0x66, 0xb8, 0x10, 0x00]);
    // The inner loop's backward branch lands on the store into the page.
    const jb = s.indexOf(0x72, target);
    assert.deepEqual([...s.subarray(jb + 2 + s.readInt8(jb + 1), jb + 2 + s.readInt8(jb + 1) + 2)], [0x89, 0x17]);
  });

  test('the blank sector has no boot signature', () => {
    const s = blankBootSector();
    assert.equal(s.length, 512);
    assert.notDeepEqual([s[510], s[511]], [0x55, 0xaa]);
  });
});
