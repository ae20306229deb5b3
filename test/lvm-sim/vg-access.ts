/** How an lvm command gets at a VG and the global lock when lvmlockd is in use. */
import { anySharedVg, globalLockAvailable, lockspaceStarted } from './model.js';
import type { Output } from './output.js';
import { findVg, isShared, type SimState, type VgRecord } from './state.js';

/** What every simulated lvm command works on: the cluster, who runs it, when, and its output. */
export interface LvmContext {
  state: SimState;
  hostId: number;
  nowMs: number;
  out: Output;
}

/**
 * lvm2 `lockd_vg` (sh) + `vg_read` + `_access_vg_lock_type` for a VG named on the command line.
 * A VG whose lockspace is not started here gets ENOLS for its VG lock: a command that activates
 * (lockd_vg_enforce_sh) cannot use it, one that only reads or deactivates goes on without a lock.
 * Returns undefined, after printing lvm's messages, when the command cannot process the VG.
 */
export function readVg(ctx: LvmContext, name: string, enforceLock: boolean): VgRecord | undefined {
  const vg = findVg(ctx.state, name);
  if (!vg) {
    ctx.out.error(`Volume group "${name}" not found`);
    ctx.out.error(`Cannot process volume group ${name}`);
    return undefined;
  }
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
