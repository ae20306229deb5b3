/** `lvm vgchange --lockstart|--lockstop`: joining and leaving a VG's lockspace on this host. */
import { lockspaceStarted, startLockspace, stopLockspace } from './model.js';
import { resolveLvArg } from './names.js';
import { COMMON_LVM_OPTIONS, flag, parseArgs, valued, type OptionSpec } from './options.js';
import { ECMD_FAILED, ECMD_PROCESSED, EINVALID_CMD_LINE } from './output.js';
import { isShared, type VgRecord } from './state.js';
import { findNamedVg, readVg, takeGlobalLockShared, type LvmContext } from './vg-access.js';

const OPTIONS: OptionSpec[] = [
  ...COMMON_LVM_OPTIONS,
  flag('lockstart', ['lockstart', 'lock-start']),
  flag('lockstop', ['lockstop', 'lock-stop']),
  flag('force', ['force'], 'f'),
  valued('activate', ['activate'], 'a'),
];

export function vgchange(ctx: LvmContext, argv: string[]): number {
  const args = parseArgs('vgchange', argv, OPTIONS);
  const start = args.counts.has('lockstart');
  const stop = args.counts.has('lockstop');
  if (start === stop || args.counts.has('activate')) {
    ctx.out.rawError('lvm-sim: vgchange is simulated only with exactly one of --lockstart, --lockstop');
    return EINVALID_CMD_LINE;
  }
  const names = args.positional.length > 0 ? [...new Set(args.positional.map((a) => resolveLvArg(ctx.state, a).vg))] : ctx.state.vgs.map((vg) => vg.name);
  return start ? lockStart(ctx, names, args.values.get('lockopt')?.at(-1)) : lockStop(ctx, names);
}

/** lvm2 `vgchange_lock_start_stop_cmd` + `lockd_start_vg`: VG locks are not used while starting. */
function lockStart(ctx: LvmContext, names: string[], lockopt: string | undefined): number {
  takeGlobalLockShared(ctx);
  let failed = false;
  const started: VgRecord[] = [];
  for (const name of names) {
    const vg = findNamedVg(ctx, name);
    if (!vg) {
      failed = true;
      continue;
    }
    if (!isShared(vg)) continue;
    if (startLockspace(ctx.state, vg, ctx.hostId)) ctx.out.print(`VG ${vg.name} starting ${vg.lockType} lockspace`);
    started.push(vg);
  }
  if (started.length > 0) {
    if (lockopt === undefined || lockopt === 'auto') {
      const sanlock = started.some((vg) => vg.lockType === 'sanlock');
      ctx.out.print(sanlock ? 'Starting locking.  Waiting for sanlock may take 20 sec to 3 min...' : 'Starting locking.  Waiting until locks are ready...');
    } else if (lockopt === 'nowait' || lockopt === 'autonowait') {
      ctx.out.print('Starting locking.  VG can only be read until locks are ready.');
    }
  }
  return failed ? ECMD_FAILED : ECMD_PROCESSED;
}

/** lvm2 `lockd_stop_vg`: lvmlockd answers EBUSY while LVs of the VG are active here. */
function lockStop(ctx: LvmContext, names: string[]): number {
  let failed = false;
  for (const name of names) {
    const vg = readVg(ctx, name, false);
    if (!vg) {
      failed = true;
      continue;
    }
    if (!isShared(vg) || !lockspaceStarted(vg, ctx.hostId)) continue;
    if (stopLockspace(vg, ctx.hostId) === 'busy') {
      ctx.out.error(`VG ${vg.name} stop failed: LVs must first be deactivated`);
      failed = true;
    }
  }
  return failed ? ECMD_FAILED : ECMD_PROCESSED;
}

