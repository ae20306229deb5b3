/** `lvm lvs` and `lvm vgs`: what this host sees. lvs never shows another host's state. */
import { groupByVg, resolveLvArg } from './names.js';
import { COMMON_LVM_OPTIONS, CommandLineError, flag, parseArgs, valued, type OptionSpec, type ParsedArgs } from './options.js';
import { ECMD_FAILED, ECMD_PROCESSED, EINVALID_CMD_LINE } from './output.js';
import {
  DEFAULT_UNITS,
  LV_FIELDS,
  LVS_DEFAULT_FIELDS,
  LVS_DEFAULT_SORT,
  parseSortKeys,
  renderJson,
  renderTable,
  selectFields,
  sortRows,
  UnknownFieldError,
  VG_FIELDS,
  VGS_DEFAULT_FIELDS,
  VGS_DEFAULT_SORT,
  type FieldDef,
  type LvRow,
  type SortKey,
  type Units,
  type VgRow,
} from './report.js';
import { processEachLv, readVg, takeGlobalLockShared, type LvmContext } from './vg-access.js';

const NOT_SIMULATED = ['select', 'segments', 'nameprefixes', 'rows'];

const OPTIONS: OptionSpec[] = [
  ...COMMON_LVM_OPTIONS,
  valued('options', ['options'], 'o'),
  valued('sort', ['sort'], 'O'),
  valued('units', ['units']),
  valued('separator', ['separator']),
  valued('reportformat', ['reportformat']),
  valued('select', ['select'], 'S'),
  flag('noheadings', ['noheadings']),
  flag('nosuffix', ['nosuffix']),
  flag('aligned', ['aligned']),
  flag('unbuffered', ['unbuffered']),
  flag('all', ['all'], 'a'),
  flag('readonly', ['readonly']),
  flag('shared', ['shared']),
  flag('foreign', ['foreign']),
  flag('ignorelockingfailure', ['ignorelockingfailure']),
  flag('ignoreskippedcluster', ['ignoreskippedcluster']),
  flag('segments', ['segments']),
  flag('nameprefixes', ['nameprefixes']),
  flag('rows', ['rows']),
  flag('binary', ['binary']),
];

interface ReportOptions {
  json: boolean;
  units: Units;
  headings: boolean;
  separator?: string;
  fieldOptions: string[];
  sortKeys?: string;
}

function reportOptions(args: ParsedArgs): ReportOptions {
  const format = args.values.get('reportformat')?.at(-1) ?? 'basic';
  if (format !== 'basic' && format !== 'json') throw new CommandLineError(undefined, `Invalid argument for --reportformat: ${format}`);
  const unit = args.values.get('units')?.at(-1);
  if (unit !== undefined && !/^[rRhHbBsSkKmMgGtTpPeE]$/.test(unit)) throw new CommandLineError(undefined, `Invalid argument for --units: ${unit}`);
  const separator = args.values.get('separator')?.at(-1);
  return {
    json: format === 'json',
    units: { unit: unit ?? DEFAULT_UNITS.unit, suffix: !args.counts.has('nosuffix') },
    headings: !args.counts.has('noheadings'),
    separator: separator !== undefined && !args.counts.has('aligned') ? separator : undefined,
    fieldOptions: args.values.get('options') ?? [],
    sortKeys: args.values.get('sort')?.join(','),
  };
}

function emit<R>(ctx: LvmContext, kind: 'lv' | 'vg', fields: FieldDef<R>[], rows: R[], opts: ReportOptions): void {
  const values = rows.map((row) => fields.map((f) => f.value(row, opts.units)));
  const lines = opts.json
    ? renderJson(kind, values.map((v) => v.map((value, i): [string, string] => [fields[i].id, value])))
    : renderTable(fields, values, { headings: opts.headings, separator: opts.separator });
  for (const line of lines) ctx.out.line(line);
}

/** Shared part of lvs and vgs: options, field selection, then rows, sorting and output. */
function runReport<R>(
  ctx: LvmContext,
  tool: 'lvs' | 'vgs',
  argv: string[],
  setup: { kind: 'lv' | 'vg'; fields: FieldDef<R>[]; defaults: string; sort: string; prefix: string },
  collect: (positional: string[]) => { rows: R[]; failed: boolean },
): number {
  const args = parseArgs(tool, argv, OPTIONS);
  const unsupported = NOT_SIMULATED.find((key) => args.counts.has(key));
  if (unsupported) {
    ctx.out.rawError(`lvm-sim: ${tool} --${unsupported} is not simulated`);
    return EINVALID_CMD_LINE;
  }
  const opts = reportOptions(args);
  let fields: FieldDef<R>[];
  let order: SortKey<R>[];
  try {
    fields = selectFields(setup.fields, setup.defaults, opts.fieldOptions, setup.prefix);
    order = parseSortKeys(setup.fields, opts.sortKeys ?? setup.sort, setup.prefix);
  } catch (err) {
    if (!(err instanceof UnknownFieldError)) throw err;
    ctx.out.error(err.message);
    return ECMD_FAILED;
  }
  const { rows, failed } = collect(args.positional);
  emit(ctx, setup.kind, fields, sortRows(rows, order, opts.units), opts);
  return failed ? ECMD_FAILED : ECMD_PROCESSED;
}

export function lvs(ctx: LvmContext, argv: string[]): number {
  const setup = { kind: 'lv' as const, fields: LV_FIELDS, defaults: LVS_DEFAULT_FIELDS, sort: LVS_DEFAULT_SORT, prefix: 'lv_' };
  return runReport<LvRow>(ctx, 'lvs', argv, setup, (positional) => {
    const rows: LvRow[] = [];
    let groups = groupByVg(positional.map((a) => resolveLvArg(ctx.state, a)));
    if (positional.length === 0) {
      takeGlobalLockShared(ctx);
      groups = ctx.state.vgs.map((vg) => ({ vg: vg.name, all: true, names: [] }));
    }
    const ok = processEachLv(ctx, groups, false, (vg, lv) => {
      rows.push({ vg, lv, hostId: ctx.hostId });
      return true;
    });
    return { rows, failed: !ok };
  });
}

export function vgs(ctx: LvmContext, argv: string[]): number {
  const setup = { kind: 'vg' as const, fields: VG_FIELDS, defaults: VGS_DEFAULT_FIELDS, sort: VGS_DEFAULT_SORT, prefix: 'vg_' };
  return runReport<VgRow>(ctx, 'vgs', argv, setup, (positional) => {
    const rows: VgRow[] = [];
    let failed = false;
    let names = [...new Set(positional.map((a) => resolveLvArg(ctx.state, a).vg))];
    if (positional.length === 0) {
      takeGlobalLockShared(ctx);
      names = ctx.state.vgs.map((vg) => vg.name);
    }
    for (const name of names) {
      const vg = readVg(ctx, name, false);
      if (vg) rows.push({ vg, hostId: ctx.hostId });
      else failed = true;
    }
    return { rows, failed };
  });
}
