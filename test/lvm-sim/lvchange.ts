/** `lvm lvchange -a…`: activation changes, the way lvm2 2.03.16 with lvmlockd answers them. */
import type { LockMode } from '../../src/locks/lv.js';
import { activateLv, deactivateLv, reapExpiredLeases } from './model.js';
import { groupByVg, resolveLvArg } from './names.js';
import { COMMON_LVM_OPTIONS, CommandLineError, flag, parseArgs, valued, type OptionSpec } from './options.js';
import { ECMD_FAILED, ECMD_PROCESSED, EINVALID_CMD_LINE } from './output.js';
import { processEachLv, type LvmContext } from './vg-access.js';

/** What -a asks for: a lock mode, lvmlockd's default (ex), or deactivation. */
type ActivationChange = LockMode | 'default' | 'off';

/** lvm2 `activation_arg`: accepted spellings of the -a value. */
const ACTIVATION_VALUES: Record<string, ActivationChange> = {
  e: 'ex', ey: 'ex', ye: 'ex',
  s: 'sh', sy: 'sh', ys: 'sh',
  y: 'default', a: 'default', ay: 'default', ya: 'default', ly: 'default', yl: 'default',
  n: 'off', en: 'off', ne: 'off', ln: 'off', nl: 'off',
};

/** Options lvm knows but the simulator does not model: refused clearly instead of misread. */
const NOT_SIMULATED = ['test', 'refresh', 'select', 'addtag', 'deltag', 'permission', 'setactivationskip'];

const OPTIONS: OptionSpec[] = [
  ...COMMON_LVM_OPTIONS,
  valued('activate', ['activate'], 'a'),
  flag('force', ['force'], 'f'),
  flag('ignoreactivationskip', ['ignoreactivationskip'], 'K'),
  flag('ignorelockingfailure', ['ignorelockingfailure']),
  flag('ignoreskippedcluster', ['ignoreskippedcluster']),
  flag('sysinit', ['sysinit']),
  flag('noudevsync', ['noudevsync']),
  flag('partial', ['partial'], 'P'),
  valued('monitor', ['monitor']),
  valued('poll', ['poll']),
  valued('activationmode', ['activationmode']),
  flag('test', ['test'], 't'),
  flag('refresh', ['refresh']),
  valued('select', ['select'], 'S'),
  valued('addtag', ['addtag']),
  valued('deltag', ['deltag']),
  valued('permission', ['permission'], 'p'),
  valued('setactivationskip', ['setactivationskip'], 'k'),
];

export function lvchange(ctx: LvmContext, argv: string[]): number {
  const { out } = ctx;
  const args = parseArgs('lvchange', argv, OPTIONS);
  if ((args.counts.get('activate') ?? 0) > 1) throw new CommandLineError(undefined, 'Option -a/--activate may not be repeated.');
  const unsupported = NOT_SIMULATED.find((key) => args.counts.has(key));
  if (unsupported) {
    out.rawError(`lvm-sim: lvchange --${unsupported} is not simulated`);
    return EINVALID_CMD_LINE;
  }
  const value = args.values.get('activate')?.[0];
  if (value === undefined) {
    out.error("No command with matching syntax recognised.  Run 'lvchange --help' for more information.");
    out.rawError('lvm-sim: lvchange is simulated only for activation (-a|--activate)');
    return EINVALID_CMD_LINE;
  }
  const change = ACTIVATION_VALUES[value];
  if (change === undefined) throw new CommandLineError(undefined, `Invalid argument for --activate: ${value}`);
  if (args.positional.length === 0) {
    out.error("No command with matching syntax recognised.  Run 'lvchange --help' for more information.");
    out.error('Nearest similar command has syntax:');
    out.print('lvchange -a|--activate y|n|ay VG|LV|Tag|Select ...');
    out.print('Activate or deactivate an LV.');
    return EINVALID_CMD_LINE;
  }

  reapExpiredLeases(ctx.state, ctx.nowMs);
  const activating = change !== 'off';
  const groups = groupByVg(args.positional.map((a) => resolveLvArg(ctx.state, a)));
  const ok = processEachLv(ctx, groups, activating, (vg, lv) => {
    const outcome = activating
      ? activateLv(ctx.state, vg, lv, ctx.hostId, change === 'default' ? null : change, ctx.nowMs)
      : deactivateLv(vg, lv, ctx.hostId);
    for (const message of outcome.messages) out.error(message);
    return outcome.ok;
  });
  return ok ? ECMD_PROCESSED : ECMD_FAILED;
}
