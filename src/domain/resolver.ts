import type { DiskRef } from './disks.js';
import { classifyPath, nodeHostFs, type HostFs } from './host-path.js';
import { isLvmName } from './lv-path.js';
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
  /** Sources that could not be classified as LV or not (also logged at warning level). */
  warnings?: string[];
}

export interface ResolverOptions {
  /** How long classifying one path on the filesystem may take (default 2 s). */
  pathTimeoutMs?: number;
  fs?: HostFs;
}

const DEFAULT_PATH_TIMEOUT_MS = 2000;

/** A source whose nature the filesystem would not tell: reported, not an error. */
class UnclassifiedSource extends Error {
  override name = 'UnclassifiedSource';
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
  private readonly loggedUnmanaged = new Set<string>(); // domain:source notes already logged
  private readonly fs: HostFs;
  private readonly pathTimeoutMs: number;

  constructor(
    private readonly lvm: Pick<Lvm, 'listVgs' | 'resolvePath'>,
    private readonly filter: () => VolumeFilter,
    private readonly logger: Logger,
    options: ResolverOptions = {},
  ) {
    this.fs = options.fs ?? nodeHostFs;
    this.pathTimeoutMs = options.pathTimeoutMs ?? DEFAULT_PATH_TIMEOUT_MS;
  }

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
    const result: ResolvedDisks = { wanted: new Map(), aliases: new Map(), errors: [], warnings: [] };
    for (const disk of disks) {
      let ref: LvRef | undefined;
      try {
        ref = await this.lvOf(domainName, disk);
      } catch (err) {
        const problem = `${describeSource(disk)}: ${(err as Error).message}`;
        if (err instanceof UnclassifiedSource) {
          result.warnings!.push(problem);
          this.logger.warning(`domain ${domainName}: ${problem}; it is not locked`);
        } else {
          result.errors.push(problem);
        }
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
        this.debugOnce(`${domainName}:${key}`, () => `domain ${domainName}: ${key} is not in a managed shared VG; not locked`);
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

  private async lvOf(domainName: string, disk: DiskRef): Promise<LvRef | undefined> {
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
    const verdict = await classifyPath(source.path, this.fs, this.pathTimeoutMs);
    switch (verdict.kind) {
      case 'lv':
        return verdict.lv;
      case 'ask-lvm':
        return this.lvm.resolvePath(verdict.path);
      case 'not-lv':
        this.debugOnce(`${domainName}:${source.path}`, () => `domain ${domainName}: ${disk.role} ${source.path} is not an LV: ${verdict.why}`);
        return undefined;
      case 'unknown':
        throw new UnclassifiedSource(verdict.why);
    }
  }

  /** Sources that need no lock are seen at every resync: say so once per domain and source. */
  private debugOnce(note: string, message: () => string): void {
    if (!this.loggedUnmanaged.has(note)) {
      this.loggedUnmanaged.add(note);
      this.logger.debug(message);
    }
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

function describeSource(disk: DiskRef): string {
  const s = disk.source;
  const what = disk.role === 'disk' ? '' : `${disk.role} `;
  return s.kind === 'volume' ? `${what}volume ${s.pool}/${s.volume}` : `${what}${s.path}`;
}
