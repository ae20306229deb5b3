/** LV names as command arguments and device paths. */
import type { LvRecord, SimState, VgRecord } from './state.js';

/** A command argument naming a whole VG (`lv` absent) or one LV. */
export interface LvArg {
  vg: string;
  lv?: string;
}

/** Device-mapper name of an LV: hyphens inside the names are doubled, one hyphen joins them. */
export function dmName(vg: string, lv: string): string {
  return `${vg.replace(/-/g, '--')}-${lv.replace(/-/g, '--')}`;
}

/** Inverse of dmName (lvm2 dm_split_lvm_name); undefined when the name has no single hyphen. */
export function splitDmName(name: string): LvArg | undefined {
  for (let i = 0; i < name.length; i++) {
    if (name[i] !== '-') continue;
    if (name[i + 1] === '-') {
      i++;
      continue;
    }
    const vg = name.slice(0, i).replace(/--/g, '-');
    const lv = name.slice(i + 1).replace(/--/g, '-');
    return vg && lv ? { vg, lv } : undefined;
  }
  return undefined;
}

export function dmUuid(vg: VgRecord, lv: LvRecord): string {
  return `LVM-${vg.uuid}${lv.uuid}`;
}

/**
 * Resolves an argument the way lvm's skip_dev_dir does (`VG`, `VG/LV`, `/dev/VG/LV`,
 * `/dev/mapper/VG-LV`), plus the device names a daemon finds in domain XML: `/dev/dm-N`,
 * `/dev/disk/by-id/dm-name-VG-LV` and `/dev/disk/by-id/dm-uuid-LVM-<vg uuid><lv uuid>`.
 * (Real lvm does not resolve those three: it would read them as a VG name.)
 */
export function resolveLvArg(state: SimState, arg: string): LvArg {
  let name = arg.replace(/^\/+/, '/');
  if (name.startsWith('/dev/')) {
    name = name.slice('/dev/'.length).replace(/^\/+/, '');
    const device = resolveDeviceName(state, name);
    if (device) return device;
  }
  name = name.replace(/\/+$/, '');
  const slash = name.indexOf('/');
  return slash === -1 ? { vg: name } : { vg: name.slice(0, slash), lv: name.slice(slash + 1) };
}

function resolveDeviceName(state: SimState, name: string): LvArg | undefined {
  if (name.startsWith('mapper/')) return splitDmName(name.slice('mapper/'.length)) ?? { vg: name.slice('mapper/'.length) };
  const minor = /^dm-(\d+)$/.exec(name);
  if (minor) return findBy(state, (_vg, lv) => lv.minor === Number(minor[1]));
  const byId = /^disk\/by-id\/dm-(name|uuid)-(.+)$/.exec(name);
  if (byId?.[1] === 'name') return splitDmName(byId[2]);
  if (byId?.[1] === 'uuid') return findBy(state, (vg, lv) => dmUuid(vg, lv) === byId[2]);
  return undefined;
}

function findBy(state: SimState, match: (vg: VgRecord, lv: LvRecord) => boolean): LvArg | undefined {
  for (const vg of state.vgs) {
    for (const lv of vg.lvs) if (match(vg, lv)) return { vg: vg.name, lv: lv.name };
  }
  return undefined;
}

/** The LVs a command names in one VG: all of them (VG argument) and/or some by name. */
export interface LvGroup {
  vg: string;
  all: boolean;
  names: string[];
}

/**
 * Groups LV arguments by VG in the order lvm processes them: VGs in order of first mention,
 * LV names once each.
 */
export function groupByVg(args: LvArg[]): LvGroup[] {
  const groups = new Map<string, LvGroup>();
  for (const arg of args) {
    let group = groups.get(arg.vg);
    if (!group) {
      group = { vg: arg.vg, all: false, names: [] };
      groups.set(arg.vg, group);
    }
    if (arg.lv === undefined) group.all = true;
    else if (!group.names.includes(arg.lv)) group.names.push(arg.lv);
  }
  return [...groups.values()];
}

/**
 * The LVs of a VG a command processes (lvm2 process_each_lv_in_vg): metadata order, thin pools
 * moved to the front, plus the named LVs that do not exist.
 */
export function selectLvs(vg: VgRecord, group: LvGroup): { lvs: LvRecord[]; missing: string[] } {
  const pools: LvRecord[] = [];
  const others: LvRecord[] = [];
  for (const lv of vg.lvs) {
    if (!group.all && !group.names.includes(lv.name)) continue;
    if (lv.segtype === 'thin-pool') pools.unshift(lv);
    else others.push(lv);
  }
  const missing = group.names.filter((name) => !vg.lvs.some((lv) => lv.name === name));
  return { lvs: [...pools, ...others], missing };
}
