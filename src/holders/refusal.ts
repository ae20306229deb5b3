import type { PeerHost } from '../config/types.js';
import { lvKey } from '../locks/lv.js';
import { describeFailure, type LvFailure } from '../lvm/errors.js';
import { HOLDER_BUDGET_MS, type HolderLookup } from './lookup.js';
import { holderLiveness, holderName, livenessText, type LivenessReader, type LockspaceReading } from './liveness.js';
import { clockTime, describeHolders } from './report.js';

/** What the engine asks about the holders of refused LVs (CoordinatorDeps.holders). */
export interface HolderSource {
  /** One line per failure; "locked by another host" ones name the holder. Never throws. */
  describe(failures: LvFailure[], budgetMs: number): Promise<string[]>;
  /** The host_ids holding the refused LVs, and why some are unknown. Never throws. */
  holderIds(failures: LvFailure[], budgetMs: number): Promise<HolderIds>;
  /** The same for LVs before any lvchange ran; `free` lists those sanlock says nobody holds. Never throws. */
  holdersOf(lvs: { vg: string; lv: string; hostId?: number }[], budgetMs: number): Promise<HolderIds>;
  /** Whether the refusal is only holders that stopped renewing, and when they free. Never throws. */
  deadHolders?(failures: LvFailure[], budgetMs: number): Promise<DeadVerdict>;
}

/** All refused LVs are held only by hosts that stopped renewing (`freeInS`: the latest frees then), or why not. */
export type DeadVerdict = { dead: true; freeInS: number; said: string } | { dead: false; why: string };

export interface HolderIds {
  ids: number[];
  unknown: string[];
  /** "vg/lv" of the LVs whose lease sanlock read with no owner. */
  free: string[];
}

function refusedByHolder(f: LvFailure): f is LvFailure & { lv: NonNullable<LvFailure['lv']> } {
  return f.cls === 'locked-by-other-host' && f.lv !== undefined;
}

/** The engine's view of the holder lookup: all refused LVs looked up at once, within one budget. */
export class HolderRefusals implements HolderSource {
  constructor(
    private readonly lookup: HolderLookup,
    /** Wall-clock now, for the "since 12:03:11" of the holder's domain. */
    private readonly wallNow: () => number = Date.now,
    /** The holders' liveness from sanlock; absent: refusals do not say whether the holder lives. */
    private readonly liveness?: LivenessReader,
  ) {}

  /** One sanlock reading per VG, started at once so it runs beside the holder lookup. */
  private readings(vgs: string[], budget: number): Map<string, Promise<LockspaceReading>> {
    const reader = this.liveness;
    return new Map(reader ? [...new Set(vgs)].map((vg) => [vg, reader.read(vg, budget)]) : []);
  }

  async describe(failures: LvFailure[], budgetMs: number): Promise<string[]> {
    const budget = Math.min(HOLDER_BUDGET_MS, budgetMs);
    const readings = this.readings(budget > 0 ? failures.filter(refusedByHolder).map((f) => f.lv.vg) : [], budget);
    return Promise.all(
      failures.map(async (f) => {
        if (!refusedByHolder(f)) return describeFailure(f);
        if (budget <= 0) return `${describeFailure(f)} (holder unknown: no time left before the hook's deadline)`;
        try {
          const report = await this.lookup.lookup(f.lv.vg, f.lv.lv, f.hostId, budget);
          const line = describeHolders(report, this.wallNow());
          const reading = await readings.get(f.lv.vg);
          if (!reading || report.holders.length === 0) return line;
          const now = this.wallNow();
          const lives = report.holders.map((h) => livenessText(holderName(h.hostId, h.peer), holderLiveness(reading, h.hostId), reading, now, clockTime));
          return `${line}; ${lives.join('; ')}`;
        } catch (err) {
          return `${lvKey(f.lv)}: locked by another host (holder unknown: ${(err as Error).message})`;
        }
      }),
    );
  }

  async deadHolders(failures: LvFailure[], budgetMs: number): Promise<DeadVerdict> {
    const other = failures.find((f) => !refusedByHolder(f));
    if (other) return { dead: false, why: `not only a lock held by another host: ${describeFailure(other)}` };
    if (!this.liveness) return { dead: false, why: "the holders' liveness is not read" };
    const budget = Math.min(HOLDER_BUDGET_MS, budgetMs);
    if (budget <= 0) return { dead: false, why: 'no time left to look up the holders' };
    const refused = failures.filter(refusedByHolder);
    if (refused.length === 0) return { dead: false, why: 'nothing was refused' };
    const readings = this.readings(refused.map((f) => f.lv.vg), budget);
    const verdicts = await Promise.all(
      refused.map(async (f): Promise<DeadVerdict> => {
        const key = lvKey(f.lv);
        const report = await this.lookup.owners(f.lv.vg, f.lv.lv, f.hostId, budget).catch((err: unknown) => ({ holders: [], unknown: (err as Error).message }));
        if (report.holders.length === 0) return { dead: false, why: `${key}: holder unknown (${report.unknown ?? 'no source named it'})` };
        const reading = (await readings.get(f.lv.vg))!;
        let freeInS = 0;
        const said: string[] = [];
        for (const h of report.holders) {
          const live = holderLiveness(reading, h.hostId);
          const name = holderName(h.hostId, h.peer);
          if ('unknown' in live) return { dead: false, why: `${key}: liveness of ${name} unknown: ${live.unknown}` };
          if (live.freeAt === undefined || 'unknown' in reading) return { dead: false, why: `${key}: ${livenessText(name, live, reading, 0, clockTime)}` };
          freeInS = Math.max(freeInS, live.freeAt - reading.monotime);
          said.push(`${name} (host_id ${h.hostId}) has not renewed its lease for ${live.silentFor ?? 0} s`);
        }
        return { dead: true, freeInS, said: `${key}: ${said.join(', ')}` };
      }),
    );
    const notDead = verdicts.find((v): v is Extract<DeadVerdict, { dead: false }> => !v.dead);
    if (notDead) return notDead;
    const dead = verdicts as Extract<DeadVerdict, { dead: true }>[];
    return { dead: true, freeInS: Math.max(...dead.map((v) => v.freeInS)), said: dead.map((v) => v.said).join('; ') };
  }

  holderIds(failures: LvFailure[], budgetMs: number): Promise<HolderIds> {
    return this.holdersOf(failures.filter(refusedByHolder).map((f) => ({ ...f.lv, hostId: f.hostId })), budgetMs);
  }

  async holdersOf(lvs: { vg: string; lv: string; hostId?: number }[], budgetMs: number): Promise<HolderIds> {
    const budget = Math.min(HOLDER_BUDGET_MS, budgetMs);
    const ids = new Set<number>();
    const unknown: string[] = [];
    const free: string[] = [];
    await Promise.all(
      lvs.map(async (ref) => {
        const key = lvKey(ref);
        if (budget <= 0) {
          unknown.push(`${key}: no time left to look up its holder`);
          return;
        }
        const report = await this.lookup.owners(ref.vg, ref.lv, ref.hostId, budget).catch((err: unknown) => ({ lv: key, holders: [], unknown: (err as Error).message, free: false }));
        for (const h of report.holders) ids.add(h.hostId);
        if (report.free) free.push(key);
        else if (report.unknown !== undefined) unknown.push(`${report.lv}: ${report.unknown}`);
      }),
    );
    return { ids: [...ids].sort((a, b) => a - b), unknown, free };
  }
}

/**
 * Which peers the destination of a migration asks to demote. A known holder with a configured
 * peer: that peer alone. A known holder no peer is configured for: the peers without a host_id
 * (one of them may be it), none if every peer has one. Unknown holder: every peer, as before the
 * lookup existed, so a migration still works where sanlock cannot be read. Pure.
 */
export function peersToAsk(hosts: readonly PeerHost[], holderIds: readonly number[]): { asked: PeerHost[]; why: string } {
  if (holderIds.length === 0) return { asked: [...hosts], why: 'holder unknown: asking every peer' };
  const named = hosts.filter((h) => h.hostId !== undefined && holderIds.includes(h.hostId));
  const missing = holderIds.filter((id) => !named.some((h) => h.hostId === id));
  const unnumbered = missing.length > 0 ? hosts.filter((h) => h.hostId === undefined) : [];
  const asked = [...named, ...unnumbered];
  const why =
    missing.length === 0
      ? `holder host_id ${holderIds.join(', ')}`
      : `no peer configured with host_id ${missing.join(', ')}${unnumbered.length ? '; asking the peers without a host_id' : ''}`;
  return { asked, why };
}
