/** How an lvm command gets at a VG and the global lock when lvmlockd is in use. */
import { anySharedVg, globalLockAvailable, lockspaceStarted } from './model.js';
import { selectLvs, type LvGroup } from './names.js';
import type { Output } from './output.js';
import { findVg, isShared, type LvRecord, type SimState, type VgRecord } from './state.js';

/** What every simulated lvm command works on: the cluster, who runs it, when, and its output. */
export interface LvmContext {
  state: SimState;
  hostId: number;
  nowMs: number;
  out: Output;
}

/** A VG named on the command line, or lvm's two lines for a VG that does not exist. */
export function findNamedVg(ctx: LvmContext, name: string): VgRecord | undefined {
  const vg = findVg(ctx.state, name);
  if (!vg) {
    ctx.out.error(`Volume group "${name}" not found`);
    ctx.out.error(`Cannot process volume group ${name}`);
  }
  return vg;
}

/**
 * lvm2 `lockd_vg` (sh) + `vg_read` + `_access_vg_lock_type` for a VG named on the command line.
 * A VG whose lockspace is not started here gets ENOLS for its VG lock: a command that activates
 * (lockd_vg_enforce_sh) cannot use it, one that only reads or deactivates goes on without a lock.
 * Returns undefined, after printing lvm's messages, when the command cannot process the VG.
 */
export function readVg(ctx: LvmContext, name: string, enforceLock: boolean): VgRecord | undefined {
  const vg = findNamedVg(ctx, name);
  if (!vg) return undefined;
  if (isShared(vg) && !lockspaceStarted(vg, ctx.hostId)) {
    if (enforceLock) {
      ctx.out.error(`Cannot access VG ${name} due to failed lock.`);
      return undefined;
    }
    ctx.out.error(`Reading VG ${name} without a lock.`);
  }
  return vg;
}

/** lvm2 `lockd_global(cmd, "sh")`, taken by commands that list every VG and by lock start. */
export function takeGlobalLockShared(ctx: LvmContext): void {
  if (anySharedVg(ctx.state) && !globalLockAvailable(ctx.state, ctx.hostId)) {
    ctx.out.error('Skipping global lock: lockspace not found or started');
  }
}

/**
 * lvm2 `process_each_lv`: VG by VG, each selected LV in VG order, then one error per named LV
 * that does not exist. Returns false when any VG or LV could not be processed.
 */
export function processEachLv(ctx: LvmContext, groups: LvGroup[], enforceLock: boolean, visit: (vg: VgRecord, lv: LvRecord) => boolean): boolean {
  let ok = true;
  for (const group of groups) {
    const vg = readVg(ctx, group.vg, enforceLock);
    if (!vg) {
      ok = false;
      continue;
    }
    const { lvs, missing } = selectLvs(vg, group);
    for (const lv of lvs) if (!visit(vg, lv)) ok = false;
    for (const name of missing) {
      ctx.out.error(`Failed to find logical volume "${vg.name}/${name}"`);
      ok = false;
    }
  }
  return ok;
}
