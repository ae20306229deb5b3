import type { TargetMode } from '../locks/lv.js';
import { lvKey } from '../locks/lv.js';
import type { DomainEntry, Phase } from '../locks/table.js';
import { describeFailure } from '../lvm/errors.js';
import type { PeerMessageKind } from '../peers/messages.js';
import type { Timer } from './clock.js';
import type { EngineContext } from './context.js';
import type { PeerNotices } from './notices.js';
import { currentModes, releaseTarget, releaseTargets } from './policy.js';
import type { Transitions } from './transitions.js';

/** The timers a domain may have running; all are cancelled when it is released. */
type TimerKind = 'retry' | 'watch' | 'incoming' | 'settle' | 'start';

/**
 * The moves every source of input shares: phase changes, taking the domain's own modes back
 * (with retries while refused), and releasing a domain. Callers hold the domain's queue.
 */
export class Lifecycle {
  private readonly timers = new Map<string, Timer>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly transitions: Transitions,
    private readonly notices: PeerNotices,
  ) {}

  setTimer(uuid: string, kind: TimerKind, delayMs: number, fn: () => void): void {
    this.cancelTimer(uuid, kind);
    if (this.ctx.stopped) return;
    const key = `${kind}:${uuid}`;
    const timer = this.ctx.clock.after(delayMs, () => {
      if (this.timers.get(key) === timer) this.timers.delete(key);
      fn();
    });
    this.timers.set(key, timer);
  }

  cancelTimer(uuid: string, kind: TimerKind): void {
    const key = `${kind}:${uuid}`;
    this.timers.get(key)?.cancel();
    this.timers.delete(key);
  }

  cancelAll(uuid?: string): void {
    for (const [key, timer] of [...this.timers]) {
      if (uuid === undefined || key.endsWith(`:${uuid}`)) {
        timer.cancel();
        this.timers.delete(key);
      }
    }
  }

  setPhase(entry: DomainEntry, phase: Phase): void {
    if (entry.phase === phase) return;
    this.ctx.logger.info(`domain ${entry.name} (${entry.uuid}) phase ${entry.phase} -> ${phase}`);
    entry.phase = phase;
    entry.since = this.ctx.clock.now();
  }

  async toRunning(entry: DomainEntry, cause: string): Promise<void> {
    this.cancelTimer(entry.uuid, 'incoming');
    this.cancelTimer(entry.uuid, 'watch');
    this.cancelTimer(entry.uuid, 'settle');
    this.cancelTimer(entry.uuid, 'start');
    entry.switchedOver = false;
    entry.incoming = undefined;
    this.setPhase(entry, 'running');
    await this.promote(entry, cause);
  }

  /** Back to the domain's own modes; retried with backoff while refused (the other host may still hold sh). */
  async promote(entry: DomainEntry, cause: string, delay = this.ctx.promoteRetry.first): Promise<void> {
    const { table } = this.ctx;
    entry.wanted = currentModes(entry.own, entry.phase);
    const targets = new Map<string, TargetMode>();
    for (const [lv, mode] of entry.wanted) if (table.held.get(lv)?.mode !== mode) targets.set(lv, mode);
    if (targets.size === 0) {
      entry.lastError = undefined;
      return;
    }
    const failures = await this.transitions.apply(entry, targets, cause);
    if (failures.length === 0) {
      entry.lastError = undefined;
      return;
    }
    entry.lastError = failures.map(describeFailure).join('; ');
    this.retryLater(entry, cause, delay);
  }

  /** Takes the domain's own modes again after `delay`, while it runs here; backs off up to the max. */
  retryLater(entry: DomainEntry, cause: string, delay = this.ctx.promoteRetry.first): void {
    const { table, logger, queue } = this.ctx;
    logger.warning(`domain ${entry.name}: cannot take its own lock modes yet (${entry.lastError}); retrying in ${delay} ms`);
    this.setTimer(entry.uuid, 'retry', delay, () => {
      void queue
        .run(entry.uuid, async () => {
          if (table.domains.get(entry.uuid) === entry && entry.phase === 'running') {
            await this.promote(entry, `${cause} (retry)`, Math.min(delay * 2, this.ctx.promoteRetry.max));
          }
        })
        .catch((err: unknown) => logger.error(`promotion retry of ${entry.name} failed: ${(err as Error).message}`));
    });
  }

  async releaseDomain(entry: DomainEntry, cause: string): Promise<void> {
    const { table, logger } = this.ctx;
    this.cancelAll(entry.uuid);
    // The other host of a migration learns at once: the destination can take ex, or the
    // source its ex back when the incoming side gave up.
    const notice: PeerMessageKind | undefined =
      entry.phase === 'migrating-out' ? 'released' : entry.phase === 'incoming' ? 'migration-failed' : undefined;
    const lvs = [...entry.wanted.keys()];
    const targets = releaseTargets(table, entry.uuid);
    const failures =
      targets.size > 0 ? await this.transitions.apply(entry, targets, cause, (lv) => releaseTarget(table, entry.uuid, lv)) : [];
    if (notice && failures.length === 0) this.notices.send(entry, notice, lvs);
    if (table.domains.get(entry.uuid) !== entry) return;
    if (failures.length === 0) {
      table.domains.delete(entry.uuid);
      return;
    }
    // Keep only what is still held, so status shows it and reconcile retries the release.
    const stuck = new Set(failures.map((f) => (f.lv ? lvKey(f.lv) : '')));
    for (const lv of [...entry.wanted.keys()]) if (!stuck.has(lv)) entry.wanted.delete(lv);
    entry.lastError = failures.map(describeFailure).join('; ');
    this.setPhase(entry, 'releasing');
    logger.error(`domain ${entry.name}: ${cause}, but some locks could not be released (retried at each reconcile): ${entry.lastError}`);
  }
}
