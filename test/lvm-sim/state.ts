/**
 * The simulated cluster: every VG, LV, lockspace and lease that lvm2 + lvmlockd + sanlock
 * would keep, stored as one JSON file shared by all simulated hosts.
 *
 * This module holds the on-disk shape, its validation, and `readClusterState`, a typed
 * read-only view that test code uses to check invariants without spawning processes.
 */
import { readFile } from 'node:fs/promises';
import type { LockMode } from '../../src/locks/lv.js';
import { lvKey } from '../../src/locks/lv.js';

export const STATE_FORMAT = 1;

export type VgLockType = 'sanlock' | 'dlm' | 'none';
export type SegType = 'linear' | 'thin' | 'thin-pool';

/** The lvm commands whose start can be delayed or hung by the settings. */
export const SIM_TOOLS = ['lvchange', 'lvs', 'vgs', 'vgchange', 'lvmlockctl'] as const;
export type SimTool = (typeof SIM_TOOLS)[number];

export interface SimSettings {
  /** Milliseconds a command waits before it takes the state lock. */
  delays: Partial<Record<SimTool, number>>;
  /** Commands that sleep forever before taking the state lock (until a signal ends them). */
  hang: SimTool[];
  /** Append " (host_id N)" to "LV locked by other host", as lvm >= 2.03.33 does with sanlock. */
  hostIdSuffix: boolean;
  /** How long a crashed host's leases block other hosts (sanlock host_dead time, measured 140 s). */
  leaseExpiryMs: number;
}

export const DEFAULT_SETTINGS: SimSettings = {
  delays: {},
  hang: [],
  hostIdSuffix: false,
  leaseExpiryMs: 140_000,
};

export interface LvRecord {
  name: string;
  /** 32 characters, without dashes (lvm's internal form). */
  uuid: string;
  segtype: SegType;
  /** For thin LVs: the name of their thin pool, whose lock they share. */
  pool?: string;
  sizeMiB: number;
  /** Stable device-mapper minor, so /dev/dm-N names one LV. */
  minor: number;
  /** lvm's lv_lockargs: "1.0.0:<lease offset>" (sanlock), "dlm", or "" (no lock of its own). */
  lockArgs: string;
  /** lvmlockd LV lock per host id (as a string key); absent = unlocked on that host. */
  holders: Record<string, LockMode>;
  /** Host ids where the LV is active (a dm device exists there). */
  active: number[];
  /** Open count per host id: processes (QEMU) holding the device open. */
  open: Record<string, number>;
}

export interface LockspaceRecord {
  /** Start order across the cluster, for lvmlockctl's lockspace order. */
  seq: number;
  /** LV lock resources (uuids) this host has requested since the lockspace started, in order. */
  resources: string[];
  /** This host used the global lock that lives in this VG's lockspace. */
  glUsed: boolean;
}

export interface VgRecord {
  name: string;
  uuid: string;
  lockType: VgLockType;
  /** Metadata sequence number: shown as the VG lock version by lvmlockctl. */
  seqno: number;
  /** The sanlock global lock is enabled in this VG (the first sanlock VG created). */
  globalLock: boolean;
  sizeMiB: number;
  /** Next sanlock lease slot for an LV lock. */
  nextLease: number;
  lockspaces: Record<string, LockspaceRecord>;
  lvs: LvRecord[];
}

export interface HostRecord {
  /** Set by kill-host: the host crashed at this time (epoch ms). */
  deadSinceMs?: number;
}

export interface SimState {
  format: typeof STATE_FORMAT;
  settings: SimSettings;
  nextMinor: number;
  nextSeq: number;
  vgs: VgRecord[];
  hosts: Record<string, HostRecord>;
}

export function emptyState(): SimState {
  return { format: STATE_FORMAT, settings: structuredClone(DEFAULT_SETTINGS), nextMinor: 0, nextSeq: 1, vgs: [], hosts: {} };
}

/** Thrown for a missing, unreadable or malformed state file: a setup problem, not an LVM answer. */
export class SimStateError extends Error {}

export function parseState(text: string, file: string): SimState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new SimStateError(`state file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const state = value as Partial<SimState> | null;
  if (!state || typeof state !== 'object' || state.format !== STATE_FORMAT || !Array.isArray(state.vgs)) {
    throw new SimStateError(`state file ${file} is not an lvm-sim state (format ${STATE_FORMAT}); create one with "lvm-sim init"`);
  }
  // Settings written by older runs may lack newer keys.
  state.settings = { ...structuredClone(DEFAULT_SETTINGS), ...state.settings };
  state.hosts ??= {};
  return state as SimState;
}

export function findVg(state: SimState, name: string): VgRecord | undefined {
  return state.vgs.find((vg) => vg.name === name);
}

export function findLv(vg: VgRecord, name: string): LvRecord | undefined {
  return vg.lvs.find((lv) => lv.name === name);
}

export function findLvByUuid(vg: VgRecord, uuid: string): LvRecord | undefined {
  return vg.lvs.find((lv) => lv.uuid === uuid);
}

export function isShared(vg: VgRecord): boolean {
  return vg.lockType !== 'none';
}

/**
 * The LV whose lvmlockd lock guards `lv`: itself for linear LVs and thin pools, the pool for
 * thin LVs (lvm2 `_lockd_lv_thin`), none in a VG without lvmlockd.
 */
export function lockTarget(vg: VgRecord, lv: LvRecord): LvRecord | undefined {
  if (!isShared(vg)) return undefined;
  if (lv.segtype === 'thin') return lv.pool === undefined ? undefined : findLv(vg, lv.pool);
  return lv;
}

export function isHostDead(state: SimState, hostId: number): boolean {
  return state.hosts[String(hostId)]?.deadSinceMs !== undefined;
}

/** A crashed host's leases stop blocking others once sanlock would declare the host dead. */
export function isLeaseExpired(state: SimState, hostId: number, nowMs: number): boolean {
  const since = state.hosts[String(hostId)]?.deadSinceMs;
  return since !== undefined && nowMs - since >= state.settings.leaseExpiryMs;
}

/** The holders of an LV lock that still count: all but expired leases of crashed hosts. */
export function liveHolders(state: SimState, target: LvRecord, nowMs: number): Array<{ hostId: number; mode: LockMode }> {
  return Object.entries(target.holders)
    .map(([id, mode]) => ({ hostId: Number(id), mode }))
    .filter((h) => !isLeaseExpired(state, h.hostId, nowMs))
    .sort((a, b) => a.hostId - b.hostId);
}

export function openCount(lv: LvRecord, hostId: number): number {
  return lv.open[String(hostId)] ?? 0;
}

export function isActiveOn(lv: LvRecord, hostId: number): boolean {
  return lv.active.includes(hostId);
}

// ---- Read-only view for test code -------------------------------------------------------------

export interface LockHolderView {
  hostId: number;
  mode: LockMode;
  /** The holder crashed (kill-host) but its lease has not expired yet. */
  hostDead: boolean;
}

export interface LvView {
  /** "vg/lv" */
  key: string;
  vg: string;
  lv: string;
  uuid: string;
  segtype: SegType;
  vgLockType: VgLockType;
  /** "vg/lv" of the LV whose lock guards this one (a thin LV's pool), or null without lvmlockd. */
  lockResource: string | null;
  /** Hosts holding the lock; expired leases of crashed hosts are left out. */
  holders: LockHolderView[];
  activeOn: number[];
  /** Open count per host id (hosts with a count of 0 are left out). */
  openCounts: Record<number, number>;
  minor: number;
}

export interface ClusterView {
  lvs: LvView[];
  /** Hosts marked crashed by kill-host. */
  deadHosts: number[];
  /** Per shared VG, the hosts whose lockspace is started. */
  lockspaces: Array<{ vg: string; hostIds: number[] }>;
  settings: SimSettings;
}

export function clusterView(state: SimState, nowMs: number): ClusterView {
  const lvs: LvView[] = [];
  for (const vg of state.vgs) {
    for (const lv of vg.lvs) {
      const target = lockTarget(vg, lv);
      const openCounts: Record<number, number> = {};
      for (const [id, count] of Object.entries(lv.open)) if (count > 0) openCounts[Number(id)] = count;
      lvs.push({
        key: lvKey({ vg: vg.name, lv: lv.name }),
        vg: vg.name,
        lv: lv.name,
        uuid: lv.uuid,
        segtype: lv.segtype,
        vgLockType: vg.lockType,
        lockResource: target ? lvKey({ vg: vg.name, lv: target.name }) : null,
        holders: target ? liveHolders(state, target, nowMs).map((h) => ({ ...h, hostDead: isHostDead(state, h.hostId) })) : [],
        activeOn: [...lv.active].sort((a, b) => a - b),
        openCounts,
        minor: lv.minor,
      });
    }
  }
  return {
    lvs,
    deadHosts: Object.entries(state.hosts).filter(([, h]) => h.deadSinceMs !== undefined).map(([id]) => Number(id)).sort((a, b) => a - b),
    lockspaces: state.vgs.filter(isShared).map((vg) => ({ vg: vg.name, hostIds: Object.keys(vg.lockspaces).map(Number).sort((a, b) => a - b) })),
    settings: state.settings,
  };
}

/**
 * Reads the cluster state file (no lock needed: writers replace it atomically) and returns,
 * per LV, its lock holders and open counts.
 */
export async function readClusterState(file: string, nowMs: number = Date.now()): Promise<ClusterView> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new SimStateError(`cannot read lvm-sim state file ${file}: ${(err as Error).message}`);
  }
  return clusterView(parseState(text, file), nowMs);
}
