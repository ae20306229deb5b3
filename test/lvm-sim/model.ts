/**
 * What lvm2 2.03.16 + lvmlockd + sanlock do to the cluster, as pure changes of SimState.
 * No I/O here: commands call these under the state lock and print the messages returned.
 * Function names follow the lvm2 code they stand for where that helps to check them.
 */
import type { LockMode } from '../../src/locks/lv.js';
import {
  findLv,
  findVg,
  isActiveOn,
  isHostDead,
  isLeaseExpired,
  isShared,
  liveHolders,
  lockTarget,
  openCount,
  type LvRecord,
  type SimState,
  type VgLockType,
  type VgRecord,
} from './state.js';
import { newLvmId } from './uuid.js';

/** Result of one LV's activation change: lvm's messages (unindented) and whether it failed. */
export interface LvChangeOutcome {
  ok: boolean;
  messages: string[];
}

/** sanlock lease offsets: the first LV lease measured at 70254592 (67 MiB), one MiB apart. */
const FIRST_LV_LEASE_MIB = 67;
const MIB = 1024 * 1024;
/** The hidden lvmlock LV of a sanlock VG (measured `[lvmlock] 256.00m`). */
export const LVMLOCK_LV_MIB = 256;
const DEFAULT_VG_MIB = 1020;
const DEFAULT_LV_MIB = 64;
const DEFAULT_POOL_MIB = 256;
const DEFAULT_THIN_POOL = 'pool0';

export function lockspaceStarted(vg: VgRecord, hostId: number): boolean {
  return vg.lockspaces[String(hostId)] !== undefined;
}

/** lvmlockd keeps a resource for every LV lock a host asked for, granted or not, until lockstop. */
function noteResource(vg: VgRecord, hostId: number, uuid: string): void {
  const ls = vg.lockspaces[String(hostId)];
  if (ls && !ls.resources.includes(uuid)) ls.resources.push(uuid);
}

/**
 * lvmlockd `res_lock`/`res_convert` with sanlock OWNER_NOWAIT: grant, convert in place, answer
 * EALREADY for the mode already held, or refuse at once (EAGAIN) naming a conflicting host.
 */
function requestLvLock(state: SimState, vg: VgRecord, target: LvRecord, hostId: number, mode: LockMode, nowMs: number): { granted: true } | { granted: false; owner: number } {
  noteResource(vg, hostId, target.uuid);
  const key = String(hostId);
  if (target.holders[key] === mode) return { granted: true };
  const others = liveHolders(state, target, nowMs).filter((h) => h.hostId !== hostId);
  const conflicts = mode === 'ex' ? others : others.filter((h) => h.mode === 'ex');
  if (conflicts.length > 0) return { granted: false, owner: conflicts[0].hostId };
  target.holders[key] = mode;
  return { granted: true };
}

/** Open count as device-mapper reports it: a thin pool is held open by its active thin LVs. */
export function effectiveOpenCount(vg: VgRecord, lv: LvRecord, hostId: number): number {
  let count = openCount(lv, hostId);
  if (lv.segtype === 'thin-pool') count += vg.lvs.filter((t) => t.pool === lv.name && isActiveOn(t, hostId)).length;
  return count;
}

function thinPoolOf(vg: VgRecord, lv: LvRecord): LvRecord | undefined {
  return lv.segtype === 'thin' && lv.pool !== undefined ? findLv(vg, lv.pool) : undefined;
}

function setActive(lv: LvRecord, hostId: number, active: boolean): void {
  const rest = lv.active.filter((h) => h !== hostId);
  lv.active = active ? [...rest, hostId] : rest;
}

/** lvm2 `lv_active_change` for -aey / -asy / -ay (mode null: lvmlockd takes ex). */
export function activateLv(state: SimState, vg: VgRecord, lv: LvRecord, hostId: number, mode: LockMode | null, nowMs: number): LvChangeOutcome {
  const target = lockTarget(vg, lv);
  if (target) {
    const failed = (reason: string): LvChangeOutcome => ({ ok: false, messages: [reason, `Failed to lock logical volume ${vg.name}/${lv.name}.`] });
    // lockd_lv sets LDLV_MODE_NO_SH for thin types; the message names the lock's own LV (the pool).
    if (mode === 'sh' && target.segtype !== 'linear') {
      return failed(`Shared activation not compatible with LV type ${target.segtype} of ${vg.name}/${target.name}`);
    }
    const answer = requestLvLock(state, vg, target, hostId, mode ?? 'ex', nowMs);
    if (!answer.granted) {
      const suffix = state.settings.hostIdSuffix && vg.lockType === 'sanlock' ? ` (host_id ${answer.owner})` : '';
      return failed(`LV locked by other host: ${vg.name}/${target.name}${suffix}`);
    }
  }
  // Already active: activate_lv does nothing, the device (and whoever holds it open) stays.
  setActive(lv, hostId, true);
  const pool = thinPoolOf(vg, lv);
  if (pool) setActive(pool, hostId, true);
  return { ok: true, messages: [] };
}

/** lvm2 `lv_active_change` for -an: deactivate, then unlock; an open LV keeps its lock. */
export function deactivateLv(vg: VgRecord, lv: LvRecord, hostId: number): LvChangeOutcome {
  if (isActiveOn(lv, hostId) && effectiveOpenCount(vg, lv, hostId) > 0) {
    return { ok: false, messages: [`Logical volume ${vg.name}/${lv.name} in use.`] };
  }
  setActive(lv, hostId, false);
  const pool = thinPoolOf(vg, lv);
  // A thin pool no thin LV uses any more is deactivated with the last one.
  if (pool && !vg.lvs.some((t) => t.pool === pool.name && isActiveOn(t, hostId))) setActive(pool, hostId, false);

  const target = lockTarget(vg, lv);
  if (!target || isActiveOn(target, hostId)) return { ok: true, messages: [] };
  if (!lockspaceStarted(vg, hostId)) {
    // The unlock fails with ENOLS; lv_active_change logs it and still succeeds.
    return {
      ok: true,
      messages: [`LV ${vg.name}/${target.name} lock failed: lockspace is inactive`, `Failed to unlock logical volume ${vg.name}/${lv.name}.`],
    };
  }
  delete target.holders[String(hostId)];
  return { ok: true, messages: [] };
}

/** Starts this host's lockspace of a shared VG; false when it was already started. */
export function startLockspace(state: SimState, vg: VgRecord, hostId: number): boolean {
  if (lockspaceStarted(vg, hostId)) return false;
  vg.lockspaces[String(hostId)] = { seq: state.nextSeq++, resources: [], glUsed: false };
  return true;
}

export function activeLvsOn(vg: VgRecord, hostId: number): LvRecord[] {
  return vg.lvs.filter((lv) => isActiveOn(lv, hostId));
}

/** lvmlockd refuses to stop a lockspace (EBUSY) while LVs of the VG are active on the host. */
export function stopLockspace(vg: VgRecord, hostId: number): 'stopped' | 'not-started' | 'busy' {
  if (!lockspaceStarted(vg, hostId)) return 'not-started';
  if (activeLvsOn(vg, hostId).length > 0) return 'busy';
  delete vg.lockspaces[String(hostId)];
  for (const lv of vg.lvs) delete lv.holders[String(hostId)];
  return 'stopped';
}

/**
 * Whether a shared-lock request for the global lock would find it: it lives in the lockspace of
 * the sanlock VG that has it enabled (dlm starts its global lockspace on demand).
 */
export function globalLockAvailable(state: SimState, hostId: number): boolean {
  return state.vgs.some((vg) => vg.lockType === 'dlm' || (vg.globalLock && lockspaceStarted(vg, hostId)));
}

export function anySharedVg(state: SimState): boolean {
  return state.vgs.some(isShared);
}

/** Drops the leases of crashed hosts that sanlock would now consider dead. */
export function reapExpiredLeases(state: SimState, nowMs: number): void {
  for (const vg of state.vgs) {
    for (const lv of vg.lvs) {
      for (const id of Object.keys(lv.holders)) if (isLeaseExpired(state, Number(id), nowMs)) delete lv.holders[id];
    }
  }
}

export function killHost(state: SimState, hostId: number, nowMs: number): void {
  if (!isHostDead(state, hostId)) state.hosts[String(hostId)] = { deadSinceMs: nowMs };
}

/** The host rebooted: it comes back with no lockspace, no lock, nothing active or open. */
export function reviveHost(state: SimState, hostId: number): void {
  const key = String(hostId);
  delete state.hosts[key];
  for (const vg of state.vgs) {
    delete vg.lockspaces[key];
    for (const lv of vg.lvs) {
      delete lv.holders[key];
      delete lv.open[key];
      setActive(lv, hostId, false);
    }
  }
}

const NAME_PATTERN = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/;

export class AdminError extends Error {}

function checkName(kind: string, name: string): void {
  if (!NAME_PATTERN.test(name) || name === '.' || name === '..') {
    throw new AdminError(`invalid ${kind} name "${name}": use letters, digits and + _ . - (not first)`);
  }
}

/** Like `vgcreate [--shared --locktype T]`: a shared VG starts its lockspace on the creating host. */
export function createVg(state: SimState, name: string, lockType: VgLockType, hostId: number, sizeMiB = DEFAULT_VG_MIB): VgRecord {
  checkName('VG', name);
  if (findVg(state, name)) throw new AdminError(`VG ${name} already exists`);
  const globalLock = lockType === 'sanlock' && !state.vgs.some((vg) => vg.globalLock);
  const vg: VgRecord = { name, uuid: newLvmId(), lockType, seqno: 1, globalLock, sizeMiB, nextLease: 0, lockspaces: {}, lvs: [] };
  state.vgs.push(vg);
  if (isShared(vg)) {
    startLockspace(state, vg, hostId);
    // vgcreate takes the global lock: its resource shows up on the creating host.
    const gl = state.vgs.find((v) => v.globalLock && lockspaceStarted(v, hostId));
    if (gl) gl.lockspaces[String(hostId)].glUsed = true;
  }
  return vg;
}

function lockArgsFor(vg: VgRecord): string {
  if (vg.lockType === 'sanlock') return `1.0.0:${(FIRST_LV_LEASE_MIB + vg.nextLease++) * MIB}`;
  return vg.lockType === 'dlm' ? 'dlm' : '';
}

function newLv(state: SimState, vg: VgRecord, name: string, segtype: LvRecord['segtype'], sizeMiB: number, pool?: string): LvRecord {
  const lv: LvRecord = {
    name,
    uuid: newLvmId(),
    segtype,
    ...(pool === undefined ? {} : { pool }),
    sizeMiB,
    minor: state.nextMinor++,
    // Thin LVs have no lock of their own: they use their pool's.
    lockArgs: segtype === 'thin' ? '' : lockArgsFor(vg),
    holders: {},
    active: [],
    open: {},
  };
  vg.lvs.push(lv);
  vg.seqno++;
  return lv;
}

/**
 * Like `lvcreate -an`: the LV is created inactive. lvcreate locks it briefly, so the creating
 * host's lvmlockd keeps an unlocked resource for it (measured: `LK LV un` on that host only).
 */
export function createLv(state: SimState, vgName: string, name: string, opts: { thin?: boolean; pool?: string; sizeMiB?: number }, hostId: number): LvRecord {
  const vg = findVg(state, vgName);
  if (!vg) throw new AdminError(`VG ${vgName} does not exist`);
  checkName('LV', name);
  if (findLv(vg, name)) throw new AdminError(`LV ${vgName}/${name} already exists`);
  let lv: LvRecord;
  if (opts.thin) {
    const poolName = opts.pool ?? DEFAULT_THIN_POOL;
    const pool = findLv(vg, poolName) ?? newLv(state, vg, poolName, 'thin-pool', DEFAULT_POOL_MIB);
    if (pool.segtype !== 'thin-pool') throw new AdminError(`LV ${vgName}/${poolName} is not a thin pool`);
    lv = newLv(state, vg, name, 'thin', opts.sizeMiB ?? DEFAULT_LV_MIB, poolName);
  } else {
    lv = newLv(state, vg, name, 'linear', opts.sizeMiB ?? DEFAULT_LV_MIB);
  }
  const target = lockTarget(vg, lv);
  if (target) noteResource(vg, hostId, target.uuid);
  // Measured on lvm 2.03.16: `lvcreate --type thin` leaves the pool's lock held ex on the
  // creating host, although pool and thin LV stay inactive, until `lvchange -an` of the pool.
  if (opts.thin && target && isShared(vg)) target.holders[String(hostId)] = 'ex';
  return lv;
}

/** Stands in for a process (QEMU) opening the LV's device on this host. */
export function openLv(vg: VgRecord, lv: LvRecord, hostId: number): void {
  if (!isActiveOn(lv, hostId)) throw new AdminError(`cannot open ${vg.name}/${lv.name} on host ${hostId}: the LV is not active there`);
  lv.open[String(hostId)] = openCount(lv, hostId) + 1;
}

export function closeLv(vg: VgRecord, lv: LvRecord, hostId: number): void {
  const count = openCount(lv, hostId);
  if (count === 0) throw new AdminError(`cannot close ${vg.name}/${lv.name} on host ${hostId}: it is not open there`);
  if (count === 1) delete lv.open[String(hostId)];
  else lv.open[String(hostId)] = count - 1;
}
