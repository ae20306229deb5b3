import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { leaseOffset, lockArgsCommand, parseLockArgsReport } from '../../src/holders/lease-args.js';
import { clientReadCommand, leaseResource, lvmlockPath, parseClientRead } from '../../src/holders/sanlock-read.js';

// Written here in the layout of lvm 2.03.16's `--reportformat json` (libdm-report.c: four-space
// indent, every value a string).
function lvsJson(rows: Array<Record<string, string>>): string {
  const body = rows.map((r) => `                {${Object.entries(r).map(([k, v]) => `"${k}":"${v}"`).join(', ')}}`).join(',\n');
  return `  {\n      "report": [\n          {\n              "lv": [\n${body}\n              ]\n          }\n      ]\n  }\n`;
}

const UUID = 'tS1bFh-Qz3x-8kLm-2PqR-aB4c-Xy9Z-0wVuTs';

describe('LV lock args: the lease offset', () => {
  test('"1.0.0:70254592" gives offset 70254592 (67 MiB: the first LV lease with 1 MiB alignment)', () => {
    assert.equal(leaseOffset('1.0.0:70254592'), 70254592);
  });
  test('the offset is the last ":" field, as lvmlockd reads it, even with more fields in between', () => {
    assert.equal(leaseOffset('1.0.0:extra:71303168'), 71303168);
  });
  test('empty lock args (a thin LV) say the LV has no lock of its own', () => {
    assert.throws(() => leaseOffset(''), /no lock args of its own \(a thin LV is locked through its pool\)/);
  });
  test('a major version other than 1 is refused, not guessed', () => {
    assert.throws(() => leaseOffset('2.0.0:70254592'), /version 2\.0\.0, which this daemon does not know/);
  });
  test('text that is not version:offset is refused', () => {
    assert.throws(() => leaseOffset('dlm'), /are not "<version>:<offset>"/);
  });
});

describe('lvs report of vg_name,lv_name,lv_uuid,lv_lockargs', () => {
  test('the command reads one LV without taking the VG lock', () => {
    assert.deepEqual(lockArgsCommand('vg0', 'lv3'), ['lvs', '--nolocking', '--reportformat', 'json', '-o', 'vg_name,lv_name,lv_uuid,lv_lockargs', 'vg0/lv3']);
  });
  test('the row of the LV gives its UUID and lease offset', () => {
    const out = lvsJson([{ vg_name: 'vg0', lv_name: 'lv3', lv_uuid: UUID, lv_lockargs: '1.0.0:70254592' }]);
    assert.deepEqual(parseLockArgsReport(out, 'vg0', 'lv3'), { vg: 'vg0', lv: 'lv3', uuid: UUID, offset: 70254592 });
  });
  test('a thin LV row (empty lock args) is an error naming the LV', () => {
    const out = lvsJson([{ vg_name: 'vg0', lv_name: 'thin1', lv_uuid: UUID, lv_lockargs: '' }]);
    assert.throws(() => parseLockArgsReport(out, 'vg0', 'thin1'), /^Error: vg0\/thin1: it has no lock args of its own/);
  });
  test('a report without the LV, or not JSON, is an error', () => {
    assert.throws(() => parseLockArgsReport(lvsJson([]), 'vg0', 'lv3'), /lvs did not report vg0\/lv3/);
    assert.throws(() => parseLockArgsReport('  LV  VG\n', 'vg0', 'lv3'), /not a JSON report/);
  });
  test('an LV row without lv_lockargs (an lvm that lacks the field) is an error', () => {
    const out = lvsJson([{ vg_name: 'vg0', lv_name: 'lv3', lv_uuid: UUID }]);
    assert.throws(() => parseLockArgsReport(out, 'vg0', 'lv3'), /no lv_lockargs field/);
  });
});

describe('sanlock client read -r RESOURCE -h 1', () => {
  test('the resource is lvm_<vg>:<LV UUID>:/dev/mapper/<vg>-lvmlock:<offset>', () => {
    assert.equal(leaseResource('vg0', UUID, 70254592), `lvm_vg0:${UUID}:/dev/mapper/vg0-lvmlock:70254592`);
    assert.deepEqual(clientReadCommand('R'), ['client', 'read', '-r', 'R', '-h', '1']);
  });
  test('a VG name with "-" has it doubled in the device-mapper name', () => {
    assert.equal(lvmlockPath('san-vg'), '/dev/mapper/san--vg-lvmlock');
  });
  test('the leader owner (with a timestamp) holds it ex', () => {
    const out = `r lvm_vg0:${UUID}:/dev/mapper/vg0-lvmlock:70254592:4\nh 2 gen 3 timestamp 3654034\n`;
    assert.deepEqual(parseClientRead(out, 0), [{ hostId: 2, generation: 3, mode: 'ex', timestamp: 3654034 }]);
  });
  test('owners without a timestamp (mode blocks) hold it sh', () => {
    const out = `r lvm_vg0:${UUID}:/dev/mapper/vg0-lvmlock:70254592:SH\nh 1 gen 7\nh 2 gen 3\n`;
    assert.deepEqual(parseClientRead(out, 0), [
      { hostId: 1, generation: 7, mode: 'sh' },
      { hostId: 2, generation: 3, mode: 'sh' },
    ]);
  });
  test('a free lease prints only the r line: no owner', () => {
    assert.deepEqual(parseClientRead(`r lvm_vg0:${UUID}:/dev/mapper/vg0-lvmlock:70254592:5\n`, 0), []);
  });
  test('"read error -2" with exit 1 (no sanlock daemon socket) names the errno and the likely cause', () => {
    assert.throws(() => parseClientRead('read error -2\n', 1), /^Error: read error -2 ENOENT \(is the sanlock daemon running\?\)$/);
  });
  test('"read error -13" says root is needed', () => {
    assert.throws(() => parseClientRead('read error -13\n', 1), /EACCES \(permission denied: run as root\)/);
  });
  test('a failure exit without output, or output without an r line, is an error', () => {
    assert.throws(() => parseClientRead('', 1), /exit code 1 with no output/);
    assert.throws(() => parseClientRead('something else\n', 0), /no "r" line/);
  });
  test('an owner line in an unknown form is an error, never skipped', () => {
    assert.throws(() => parseClientRead('r x:y:/p:0:1\nh 2 generation 3\n', 0), /cannot read the owner line "h 2 generation 3"/);
  });
});
