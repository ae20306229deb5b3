import { lvKey, type LockMode, type TargetMode } from '../locks/lv.js';
import { KeyedMutex } from '../locks/queue.js';
import { describeFailure, type LvFailure } from '../lvm/errors.js';
import type { EngineContext } from './context.js';
import { groupTransitions } from './policy.js';

export interface Actor {
  uuid: string;
  name: string;
  peer?: string;
  /** A domain's own modes, recorded with the LVs taken for it. */
  own?: Map<string, LockMode>;
}

/**
 * The only way the engine changes a lock: one lvchange per VG per mode, the table updated from
 * the result, one audit record per LV, and the LVs recorded as ours before they are taken.
 */
export class Transitions {
  private readonly mutex = new KeyedMutex();
  /** Per LV: when its last transition began, or Infinity while one runs. */
  private readonly lastChange = new Map<string, number>();

  constructor(private readonly ctx: EngineContext) {}

  /**
   * `recheck`, when given, decides each LV's target again under the LVs' mutex, so nobody can
   * register a use of an LV between that decision and the lvchange (undefined: leave it alone).
   */
  async apply(
    actor: Actor,
    requested: Map<string, TargetMode>,
    cause: string,
    recheck?: (lv: string) => TargetMode | undefined,
  ): Promise<LvFailure[]> {
    const { table, ownership, clock } = this.ctx;
    const { lvm, audit } = this.ctx.deps;
    const release = await this.mutex.lock([...requested.keys()]);
    try {
      const targets = new Map<string, TargetMode>();
      for (const [lv, to] of requested) {
        const now = recheck ? recheck(lv) : to;
        if (now) targets.set(lv, now);
      }
      for (const lv of targets.keys()) this.lastChange.set(lv, Infinity);
      const own = 'own' in actor ? actor.own : undefined;
      const claims = [...targets].filter(([lv, to]) => to !== 'off' && !ownership.has(lv)).map(([lv]) => lv);
      await ownership.claim(
        [...targets].filter(([, to]) => to !== 'off').map(([lv, to]) => ({ lv, domain: actor.uuid, mode: own?.get(lv) ?? (to as LockMode) })),
      );
      const results = await Promise.all(
        groupTransitions(targets).map(async (t) => {
          const from = new Map(t.lvs.map((lv) => [lv, table.held.get(lvKey({ vg: t.vg, lv }))?.mode ?? 'none']));
          const result = await lvm.change(t.vg, t.lvs, t.to).catch((err: unknown) => ({
            ok: false,
            ms: 0,
            failures: t.lvs.map((lv): LvFailure => ({ lv: { vg: t.vg, lv }, cls: 'failed', message: (err as Error).message })),
          }));
          const failures: LvFailure[] = [];
          const released: string[] = [];
          for (const lv of t.lvs) {
            const key = lvKey({ vg: t.vg, lv });
            const failure = result.ok ? undefined : result.failures.find((f) => f.lv?.vg === t.vg && f.lv.lv === lv);
            if (failure) {
              failures.push(failure);
              // A killed command leaves the state unknown: forget the cache, reconcile reads it back.
              if (failure.cls === 'timeout') table.held.delete(key);
            } else {
              table.setHeld(key, t.to, clock.now());
              if (t.to === 'off') released.push(key);
            }
            audit.record({
              domain: actor.name,
              uuid: actor.uuid,
              lv: key,
              from: from.get(lv) ?? 'none',
              to: t.to,
              result: failure ? 'failed' : 'ok',
              ms: result.ms,
              cause,
              peer: actor.peer,
              reason: failure ? describeFailure(failure) : undefined,
            });
            this.ctx.metrics.transition(failure ? 'failed' : 'ok', cause, t.to);
          }
          await ownership.disclaim(released);
          return failures;
        }),
      );
      const failures = results.flat();
      // A refused take leaves the LV as it was: not ours, unless a killed command left it unknown.
      const unknown = new Set(failures.filter((f) => f.cls === 'timeout' && f.lv).map((f) => lvKey(f.lv!)));
      await ownership.disclaim(claims.filter((lv) => !table.held.has(lv) && !unknown.has(lv)));
      return failures;
    } finally {
      const end = clock.now();
      for (const lv of requested.keys()) if (this.lastChange.get(lv) === Infinity) this.lastChange.set(lv, end);
      release();
    }
  }

  /** Whether a transition of the LV ran (or runs) at or after `since`. */
  changedSince(lv: string, since: number): boolean {
    return (this.lastChange.get(lv) ?? -Infinity) >= since;
  }
}
