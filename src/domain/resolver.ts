import { readFile, realpath } from 'node:fs/promises';
import type { DiskRef } from './disks.js';
import { isLvmName, lvFromPath, needsLvmLookup } from './lv-path.js';
import type { LockMode, LvRef } from '../locks/lv.js';
import { lvKey, strongerMode } from '../locks/lv.js';
import type { Logger } from '../log/logger.js';
import type { Lvm, VgInfo } from '../lvm/lvm.js';

export interface VolumeFilter {
  includeVgs: string[];
  excludeVgs: string[];
}

export interface ResolvedDisks {
  /** Managed LVs ("vg/lv") and the mode the domain needs on each. */
  wanted: Map<string, LockMode>;
  /** Device alias to managed LVs, for hot-unplug. */
  aliases: Map<string, string[]>;
  /** Disks that may be managed LVs but could not be resolved: a start must not go ahead unlocked. */
  errors: string[];
}

const SHARED_LOCK_TYPES = new Set(['sanlock', 'dlm']);

/**
 * Turns disk references into the managed LVs to lock. Path forms that name VG and LV are parsed;
 * only the others are asked of LVM. Which VGs are shared (and so managed) is cached and refreshed
 * on reconcile, or at once when a VG not seen before shows up.
 */
export class DiskResolver {
  private vgs = new Map<string, VgInfo>();
  private pools = new Map<string, string | null>();
  private readonly loggedUnmanaged = new Set<string>();

  constructor(
    private readonly lvm: Pick<Lvm, 'listVgs' | 'resolvePath'>,
    private readonly filter: () => VolumeFilter,
    private readonly logger: Logger,
  ) {}

  async refreshVgs(): Promise<void> {
    const list = await this.lvm.listVgs();
    this.vgs = new Map(list.map((vg) => [vg.name, vg]));
  }

  /** Pool name to the VG of a logical pool, or null for pools of other types. */
  setPools(pools: Map<string, string | null>): void {
    this.pools = pools;
  }

  isManagedVg(vg: string): boolean {
    const info = this.vgs.get(vg);
    if (!info || !SHARED_LOCK_TYPES.has(info.lockType)) return false;
    const { includeVgs, excludeVgs } = this.filter();
    if (excludeVgs.includes(vg)) return false;
    return includeVgs.length === 0 || includeVgs.includes(vg);
  }

  managedVgs(): string[] {
    return [...this.vgs.keys()].filter((vg) => this.isManagedVg(vg)).sort();
  }

  async resolve(domainName: string, disks: DiskRef[]): Promise<ResolvedDisks> {
    const result: ResolvedDisks = { wanted: new Map(), aliases: new Map(), errors: [] };
    for (const disk of disks) {
      let ref: LvRef | undefined;
      try {
        ref = await this.lvOf(disk);
      } catch (err) {
        result.errors.push(`${describeSource(disk)}: ${(err as Error).message}`);
        continue;
      }
      if (!ref) continue;
      if (!this.vgs.has(ref.vg)) {
        const failure = await this.refreshVgsQuietly();
        // Unknown whether the VG is shared: going ahead could run a guest on an unlocked LV.
        if (failure) {
          result.errors.push(`${describeSource(disk)}: cannot tell whether VG ${ref.vg} is shared: ${failure}`);
          continue;
        }
      }
      const key = lvKey(ref);
      if (!this.isManagedVg(ref.vg)) {
        const note = `${domainName}:${key}`;
        if (!this.loggedUnmanaged.has(note)) {
          this.loggedUnmanaged.add(note);
          this.logger.debug(`domain ${domainName}: ${key} is not in a managed shared VG; not locked`);
        }
        continue;
      }
      const prev = result.wanted.get(key);
      result.wanted.set(key, prev ? strongerMode(prev, disk.mode) : disk.mode);
      if (disk.alias) {
        const list = result.aliases.get(disk.alias) ?? [];
        if (!list.includes(key)) list.push(key);
        result.aliases.set(disk.alias, list);
      }
    }
    return result;
  }

  private async lvOf(disk: DiskRef): Promise<LvRef | undefined> {
    const source = disk.source;
    if (source.kind === 'volume') {
      if (!this.pools.has(source.pool)) {
        throw new Error(
          `storage pool ${source.pool} is not known yet (the pool list is refreshed at each resync; run "virt-lvmlockctl reconcile" and try again)`,
        );
      }
      const vg = this.pools.get(source.pool);
      if (!vg) return undefined;
      if (!isLvmName(source.volume)) throw new Error(`volume name "${source.volume}" is not a valid LV name`);
      return { vg, lv: source.volume };
    }
    const parsed = lvFromPath(source.path);
    if (parsed) return parsed;
    if (!needsLvmLookup(source.path)) return undefined;
    return (await lvFromDeviceMapper(source.path)) ?? this.lvm.resolvePath(source.path);
  }

  /** Returns why the listing failed, or undefined when it worked. */
  private async refreshVgsQuietly(): Promise<string | undefined> {
    try {
      await this.refreshVgs();
      return undefined;
    } catch (err) {
      this.logger.warning(`cannot list volume groups: ${(err as Error).message}`);
      return (err as Error).message;
    }
  }
}

/**
 * /dev/dm-N and /dev/disk/by-id links of an active LV: the kernel knows the device-mapper name
 * ("vg-lv", hyphens doubled), which names the LV without running LVM. Anything else, or an LV that
 * is not active here, is left to LVM.
 */
async function lvFromDeviceMapper(path: string): Promise<LvRef | undefined> {
  try {
    const device = await realpath(path);
    const m = /^\/dev\/(dm-\d+)$/.exec(device);
    if (!m) return undefined;
    const [uuid, name] = await Promise.all([
      readFile(`/sys/block/${m[1]}/dm/uuid`, 'utf8'),
      readFile(`/sys/block/${m[1]}/dm/name`, 'utf8'),
    ]);
    if (!uuid.startsWith('LVM-')) return undefined;
    return lvFromPath(`/dev/mapper/${name.trim()}`);
  } catch {
    return undefined;
  }
}

function describeSource(disk: DiskRef): string {
  const s = disk.source;
  return s.kind === 'volume' ? `volume ${s.pool}/${s.volume}` : s.path;
}
