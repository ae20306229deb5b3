/**
 * lvm's reporting (lib/report/columns.h, libdm-report.c): the fields the simulator knows, how
 * `-o` names select them, sizes in `--units`, and the two output forms, the aligned table and
 * `--reportformat json` (every value a string, lines indented like lvm's log_print).
 */
import { effectiveOpenCount, LVMLOCK_LV_MIB } from './model.js';
import { dmName } from './names.js';
import { isActiveOn, type LvRecord, type VgRecord } from './state.js';
import { dashedId } from './uuid.js';

export interface VgRow {
  vg: VgRecord;
  hostId: number;
}

export interface LvRow extends VgRow {
  lv: LvRecord;
}

export interface Units {
  /** lvm --units letter: r/h human, b bytes, s sectors, k..e binary, K..E decimal. */
  unit: string;
  suffix: boolean;
}

export const DEFAULT_UNITS: Units = { unit: 'r', suffix: true };

export interface FieldDef<R> {
  id: string;
  heading: string;
  /** Minimum column width from columns.h. */
  width: number;
  /** Numbers and sizes are right-aligned in the table. */
  numeric: boolean;
  value(row: R, units: Units): string;
}

const MIB = 1024 * 1024;

function field<R>(id: string, heading: string, width: number, value: (row: R, units: Units) => string, numeric = false): FieldDef<R> {
  return { id, heading, width, numeric, value };
}

function vgFreeMiB(vg: VgRecord): number {
  const used = vg.lvs.filter((lv) => lv.segtype !== 'thin').reduce((sum, lv) => sum + lv.sizeMiB, 0);
  return vg.sizeMiB - used - (vg.lockType === 'sanlock' ? LVMLOCK_LV_MIB : 0);
}

export const VG_FIELDS: FieldDef<VgRow>[] = [
  field('vg_name', 'VG', 0, (r) => r.vg.name),
  field('vg_uuid', 'VG UUID', 38, (r) => dashedId(r.vg.uuid)),
  field('vg_attr', 'Attr', 5, (r) => `wz--n${r.vg.lockType === 'none' ? '-' : 's'}`),
  field('vg_size', 'VSize', 0, (r, u) => formatSize(r.vg.sizeMiB * MIB, u), true),
  field('vg_free', 'VFree', 0, (r, u) => formatSize(vgFreeMiB(r.vg) * MIB, u), true),
  field('vg_systemid', 'System ID', 0, () => ''),
  field('vg_lock_type', 'LockType', 0, (r) => r.vg.lockType),
  field('vg_lock_args', 'VLockArgs', 0, (r) => ({ sanlock: '1.0.0:lvmlock', dlm: '1.0.0:cluster', none: '' })[r.vg.lockType]),
  field('pv_count', '#PV', 0, () => '1', true),
  field('lv_count', '#LV', 0, (r) => String(r.vg.lvs.length), true),
  field('snap_count', '#SN', 0, () => '0', true),
];

function activeHere(r: LvRow): boolean {
  return isActiveOn(r.lv, r.hostId);
}

function isThinType(lv: LvRecord): boolean {
  return lv.segtype !== 'linear';
}

/** lv_attr: type, permissions, allocation, fixed minor, state, open, target, zero, health, skip. */
export function lvAttr(r: LvRow): string {
  const { lv } = r;
  const type = { linear: '-', thin: 'V', 'thin-pool': 't' }[lv.segtype];
  const state = activeHere(r) ? 'a' : '-';
  const open = activeHere(r) && effectiveOpenCount(r.vg, lv, r.hostId) > 0 ? 'o' : '-';
  const target = isThinType(lv) ? 't' : '-';
  const zero = isThinType(lv) ? 'z' : '-';
  return `${type}wi-${state}${open}${target}${zero}--`;
}

const LV_ONLY_FIELDS: FieldDef<LvRow>[] = [
  field('lv_uuid', 'LV UUID', 38, (r) => dashedId(r.lv.uuid)),
  field('lv_name', 'LV', 4, (r) => r.lv.name),
  field('lv_full_name', 'LV', 4, (r) => `${r.vg.name}/${r.lv.name}`),
  field('lv_path', 'Path', 0, (r) => `/dev/${r.vg.name}/${r.lv.name}`),
  field('lv_dm_path', 'DMPath', 0, (r) => `/dev/mapper/${dmName(r.vg.name, r.lv.name)}`),
  field('lv_layout', 'Layout', 10, (r) => ({ linear: 'linear', thin: 'thin,sparse', 'thin-pool': 'thin,pool' })[r.lv.segtype]),
  field('lv_attr', 'Attr', 4, lvAttr),
  field('lv_active', 'Active', 0, (r) => (activeHere(r) ? 'active' : '')),
  field('lv_active_locally', 'ActLocal', 10, (r) => (activeHere(r) ? 'active locally' : '')),
  // lvs shows no other host's state.
  field('lv_active_remotely', 'ActRemote', 10, () => ''),
  // lvm <= 2.03.17 reads "active exclusively" whenever the LV is active here, under sh too.
  field('lv_active_exclusively', 'ActExcl', 10, (r) => (activeHere(r) ? 'active exclusively' : '')),
  field('lv_size', 'LSize', 0, (r, u) => formatSize(r.lv.sizeMiB * MIB, u), true),
  field('origin', 'Origin', 0, () => ''),
  field('pool_lv', 'Pool', 0, (r) => r.lv.pool ?? ''),
  field('data_percent', 'Data%', 6, (r) => (isThinType(r.lv) && activeHere(r) ? '0.00' : ''), true),
  field('metadata_percent', 'Meta%', 6, (r) => (r.lv.segtype === 'thin-pool' && activeHere(r) ? '0.00' : ''), true),
  field('move_pv', 'Move', 0, () => ''),
  field('mirror_log', 'Log', 0, () => ''),
  field('copy_percent', 'Cpy%Sync', 0, () => '', true),
  field('convert_lv', 'Convert', 0, () => ''),
  field('lv_tags', 'LV Tags', 0, () => ''),
  field('lv_lockargs', 'LLockArgs', 0, (r) => r.lv.lockArgs),
  field('lv_kernel_major', 'KMaj', 0, (r) => (activeHere(r) ? '253' : '-1'), true),
  field('lv_kernel_minor', 'KMin', 0, (r) => (activeHere(r) ? String(r.lv.minor) : '-1'), true),
  field('lv_device_open', 'DevOpen', 10, (r) => (lvAttr(r)[5] === 'o' ? 'open' : '')),
  field('segtype', 'Type', 0, (r) => r.lv.segtype),
];

/** lvs reports LV fields and the fields of the LV's VG. */
export const LV_FIELDS: FieldDef<LvRow>[] = [...LV_ONLY_FIELDS, ...VG_FIELDS];

export const LVS_DEFAULT_FIELDS = 'lv_name,vg_name,lv_attr,lv_size,pool_lv,origin,data_percent,metadata_percent,move_pv,mirror_log,copy_percent,convert_lv';
export const LVS_DEFAULT_SORT = 'vg_name,lv_name';
export const VGS_DEFAULT_FIELDS = 'vg_name,pv_count,lv_count,snap_count,vg_attr,vg_size,vg_free';
export const VGS_DEFAULT_SORT = 'vg_name';

/** A `-o` name that matches no field: lvm prints "Unrecognised field: NAME" and fails. */
export class UnknownFieldError extends Error {
  constructor(readonly fieldName: string) {
    super(`Unrecognised field: ${fieldName}`);
  }
}

const canon = (name: string) => name.toLowerCase().replace(/_/g, '');

/** libdm `_is_same_field`: underscores and case do not matter, the report prefix is optional. */
export function findField<R>(fields: FieldDef<R>[], name: string, prefix: string): FieldDef<R> {
  const wanted = canon(name);
  const found = fields.find((f) => canon(f.id) === wanted) ?? fields.find((f) => canon(f.id) === canon(prefix) + wanted);
  if (!found) throw new UnknownFieldError(name);
  return found;
}

/** Field list from `-o` values: a plain list replaces the default, `+list` appends, `-list` removes. */
export function selectFields<R>(fields: FieldDef<R>[], defaults: string, options: string[], prefix: string): FieldDef<R>[] {
  const names = (list: string) => list.split(',').filter((n) => n !== '');
  let selected = names(defaults).map((n) => findField(fields, n, prefix));
  let replaced = false;
  for (const option of options) {
    if (option.startsWith('+')) {
      selected.push(...names(option.slice(1)).map((n) => findField(fields, n, prefix)));
    } else if (option.startsWith('-')) {
      const drop = names(option.slice(1)).map((n) => findField(fields, n, prefix));
      selected = selected.filter((f) => !drop.includes(f));
    } else {
      const chosen = names(option).map((n) => findField(fields, n, prefix));
      selected = replaced ? [...selected, ...chosen] : chosen;
      replaced = true;
    }
  }
  return selected;
}

export interface SortKey<R> {
  field: FieldDef<R>;
  descending: boolean;
}

/** `-O` keys: field names, each optionally prefixed with "-" (descending) or "+". */
export function parseSortKeys<R>(fields: FieldDef<R>[], keys: string, prefix: string): SortKey<R>[] {
  return keys
    .split(',')
    .filter((k) => k !== '')
    .map((k) => ({ field: findField(fields, k.replace(/^[+-]/, ''), prefix), descending: k.startsWith('-') }));
}

export function sortRows<R>(rows: R[], order: SortKey<R>[], units: Units): R[] {
  const numberOf = (v: string) => Number.parseFloat(v.replace(/^</, ''));
  return [...rows].sort((a, b) => {
    for (const { field: f, descending } of order) {
      const x = f.value(a, units);
      const y = f.value(b, units);
      const cmp = f.numeric ? numberOf(x) - numberOf(y) : x < y ? -1 : x > y ? 1 : 0;
      if (cmp !== 0) return descending ? -cmp : cmp;
    }
    return 0;
  });
}

/** lvm's display_size: two decimals; with units "r" a rounded-up value is marked "<". */
export function formatSize(bytes: number, units: Units): string {
  const unit = units.unit;
  if (unit === 'b' || unit === 'B') return `${bytes}${units.suffix ? 'B' : ''}`;
  if (unit === 's' || unit === 'S') return `${Math.floor(bytes / 512)}${units.suffix ? 'S' : ''}`;
  const human = 'rRhH'.includes(unit);
  const base = human ? (unit === 'R' || unit === 'H' ? 1000 : 1024) : unit === unit.toUpperCase() ? 1000 : 1024;
  const letters = 'kmgtpe';
  let power: number;
  if (human) {
    if (bytes === 0) return units.suffix ? '0 ' : '0';
    power = 1;
    while (power < letters.length && bytes >= base ** (power + 1)) power++;
  } else {
    power = letters.indexOf(unit.toLowerCase()) + 1;
  }
  const value = bytes / base ** power;
  const marksRounding = unit === 'r' || unit === 'R';
  const rounded = marksRounding ? Math.ceil(value * 100 - 1e-9) / 100 : Math.round(value * 100) / 100;
  const marker = marksRounding && units.suffix && rounded > value + 1e-9 ? '<' : '';
  const letter = letters[power - 1];
  const suffix = units.suffix ? (base === 1000 ? letter.toUpperCase() : letter) : '';
  return `${marker}${rounded.toFixed(2)}${suffix}`;
}

const escapeJson = (value: string) => value.replace(/"/g, '\\"');

/** `--reportformat json` of lvm 2.03.16, byte for byte (libdm-report.c, JSON_INDENT_UNIT 4). */
export function renderJson(kind: 'lv' | 'vg', rows: Array<Array<[string, string]>>): string[] {
  const lines = ['  {', '      "report": [', '          {', `              "${kind}": [`];
  rows.forEach((row, i) => {
    const body = row.map(([key, value]) => `"${key}":"${escapeJson(value)}"`).join(', ');
    lines.push(`                  {${body}}${i < rows.length - 1 ? ',' : ''}`);
  });
  lines.push('              ]', '          }', '      ]', '  }');
  return lines;
}

/** The basic report: headings left-aligned, values padded to the column width (or joined by --separator). */
export function renderTable(columns: Array<{ heading: string; width: number; numeric: boolean }>, rows: string[][], opts: { headings: boolean; separator?: string }): string[] {
  const lines: string[] = [];
  if (opts.separator !== undefined) {
    if (opts.headings) lines.push(`  ${columns.map((c) => c.heading).join(opts.separator)}`);
    for (const row of rows) lines.push(`  ${row.join(opts.separator)}`);
    return lines;
  }
  const widths = columns.map((c, i) => Math.max(c.width, c.heading.length, ...rows.map((r) => r[i].length)));
  if (opts.headings) lines.push(`  ${columns.map((c, i) => c.heading.padEnd(widths[i])).join(' ')}`);
  for (const row of rows) {
    lines.push(`  ${row.map((v, i) => (columns[i].numeric ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join(' ')}`);
  }
  return lines;
}
