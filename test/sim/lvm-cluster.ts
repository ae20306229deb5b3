/**
 * lvmlockd + sanlock for the whole simulated cluster, in memory: one SimState shared by every
 * host, changed by the lvm simulator's own command bodies (test/lvm-sim), so the exit codes and
 * messages are the simulator's, which the LVM contract holds to real lvmlockd. No files, no
 * processes, no real time: `Exec` answers come back after a virtual delay.
 */
import type { LockMode } from '../../src/locks/lv.js';
import type { Exec, RunResult } from '../../src/lvm/run.js';
import { lvmlockctl } from '../lvm-sim/lockctl.js';
import { lvchange } from '../lvm-sim/lvchange.js';
import { closeLv, createLv, createVg, openLv, startLockspace } from '../lvm-sim/model.js';
import { runBody } from '../lvm-sim/run.js';
import { EINVALID_CMD_LINE, Output, type ToolResult } from '../lvm-sim/output.js';
import { lvs, vgs } from '../lvm-sim/reporting.js';
import { emptyState, findLv, findVg, lockTarget, type SimState, type VgLockType } from '../lvm-sim/state.js';
import { vgchange } from '../lvm-sim/vgchange.js';
import type { LvmContext } from '../lvm-sim/vg-access.js';

const COMMANDS: Record<string, (ctx: LvmContext, argv: string[]) => number> = { lvchange, lvs, vgs, vgchange };

export interface VgSpec {
  name: string;
  lockType: VgLockType;
  lvs: Array<string | { name: string; thin: true }>;
}

/** A deterministic LVM id (32 characters), so runs never depend on a random UUID. */
function fixedId(n: number): string {
  return `sim${String(n).padStart(29, '0')}`;
}

export class LvmCluster {
  readonly state: SimState = emptyState();

  constructor(vgs: VgSpec[], hostIds: number[], options: { hostIdSuffix?: boolean } = {}) {
    const first = hostIds[0]!;
    let ids = 0;
    for (const spec of vgs) {
      const vg = createVg(this.state, spec.name, spec.lockType, first);
      vg.uuid = fixedId(ids++);
      for (const lv of spec.lvs) {
        const rec = typeof lv === 'string' ? createLv(this.state, spec.name, lv, {}, first) : createLv(this.state, spec.name, lv.name, { thin: true }, first);
        rec.uuid = fixedId(ids++);
      }
      // As on real lvm, creating a thin LV leaves its pool locked ex on the creator: release it.
      for (const rec of vg.lvs) if (rec.segtype === 'thin-pool') delete rec.holders[String(first)];
      for (const id of hostIds) startLockspace(this.state, vg, id);
    }
    this.state.settings.hostIdSuffix = options.hostIdSuffix ?? false;
  }

  /** One command line as a host runs it: ['lvm', 'lvchange', ...] or ['lvmlockctl', '--info']. */
  run(hostId: number, file: string, args: string[], nowMs: number): ToolResult {
    const out = new Output();
    const [tool, argv] = file === 'lvmlockctl' ? ['lvmlockctl', args] : [args[0] ?? '', args.slice(1)];
    const body = tool === 'lvmlockctl' ? lvmlockctl : COMMANDS[tool];
    if (!body) {
      out.rawError(`sim: ${file} ${args.join(' ')} is not simulated`);
      return out.result(EINVALID_CMD_LINE);
    }
    return runBody(body, { state: this.state, hostId, nowMs, out }, argv);
  }

  private lv(key: string) {
    const [vgName, lvName] = key.split('/');
    const vg = findVg(this.state, vgName!);
    const lv = vg && findLv(vg, lvName!);
    if (!vg || !lv) throw new Error(`sim: no LV ${key}`);
    return { vg, lv };
  }

  /** A process (QEMU) on the host opens the LV; false when the LV is not active there. */
  open(hostId: number, key: string): boolean {
    const { vg, lv } = this.lv(key);
    if (!lv.active.includes(hostId)) return false;
    openLv(vg, lv, hostId);
    return true;
  }

  close(hostId: number, key: string): void {
    const { vg, lv } = this.lv(key);
    if ((lv.open[String(hostId)] ?? 0) > 0) closeLv(vg, lv, hostId);
  }

  isOpen(hostId: number, key: string): boolean {
    return (this.lv(key).lv.open[String(hostId)] ?? 0) > 0;
  }

  /** The lock holders of the LV's lock (a thin LV's pool), host id to mode. */
  holders(key: string): Map<number, LockMode> {
    const { vg, lv } = this.lv(key);
    const target = lockTarget(vg, lv);
    return new Map(Object.entries(target?.holders ?? {}).map(([id, mode]) => [Number(id), mode]));
  }

  keys(): string[] {
    return this.state.vgs.flatMap((vg) => vg.lvs.filter((lv) => lv.segtype !== 'thin-pool').map((lv) => `${vg.name}/${lv.name}`));
  }
}

/** The virtual duration of a command, drawn by the caller; refusals of -asy are slow (sanlock retries). */
export interface DelayModel {
  (file: string, args: string[], result: ToolResult): number;
}

/**
 * An `Exec` for the real `Lvm` class on one host: the command takes effect at once and its answer
 * arrives after the virtual delay. `alive()` false = the calling daemon died: the answer never comes.
 */
export function clusterExec(
  cluster: LvmCluster,
  hostId: number,
  clock: { now(): number; sleep(ms: number): Promise<void> },
  delay: DelayModel,
  hooks: { alive(): boolean; before?(file: string, args: string[]): void },
): Exec {
  return async (file, args): Promise<RunResult> => {
    if (!hooks.alive()) return new Promise<RunResult>(() => undefined);
    hooks.before?.(file, args);
    const r = cluster.run(hostId, file, args, clock.now());
    const ms = delay(file, args, r);
    await clock.sleep(ms);
    if (!hooks.alive()) return new Promise<RunResult>(() => undefined);
    return { rc: r.rc, signal: null, stdout: r.stdout, stderr: r.stderr, ms, timedOut: false };
  };
}
