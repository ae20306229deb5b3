import { formatDuration } from '../config/duration.js';
import { HOLDER_BUDGET_MS } from '../holders/lookup.js';
import type { HolderSource } from '../holders/refusal.js';
import { clockTime } from '../holders/report.js';
import type { Logger } from '../log/logger.js';
import type { LvFailure } from '../lvm/errors.js';
import type { Clock } from './clock.js';
import type { EngineContext } from './context.js';

/**
 * hook.wait_for_dead_holder: a fresh start refused only because the LVs' holders stopped renewing
 * their sanlock leases waits until sanlock frees those leases, then runs the real lvchange again.
 * The lock is sanlock's to grant: nothing here takes it, it only chooses when to ask again.
 */

/** Past the computed expiry before the first retry: sanlock's clock counts whole seconds, and frees only after it. */
export const DEAD_WAIT_MARGIN_MS = 2000;
/** Between retries once the expiry has passed and sanlock still refuses. */
export const DEAD_RETRY_MS = 2000;
/**
 * Kept free before the hook's deadline when deciding whether a retry still fits: the lvchange
 * itself (a grant takes sanlock a few hundred ms), then the refusal's holder lookup if it fails.
 */
export const DEAD_RESERVE_MS = HOLDER_BUDGET_MS + 2000;

export interface DeadWaitDeps {
  clock: Pick<Clock, 'now' | 'sleep'>;
  logger: Pick<Logger, 'notice'>;
  holders: HolderSource | undefined;
  /** hook.wait_for_dead_holder. */
  enabled: boolean;
  /** hook.timeout, named when it is too short for the wait. */
  hookTimeoutMs: number;
  /** Wall clock, for the "at about 12:05:40" of messages. */
  wallNow?: () => number;
}

export interface DeadWaitResult {
  /** What is still refused after any wait; empty when the retry was granted. */
  failures: LvFailure[];
  /** Added to the refusal when the wait was declined or gave up; '' otherwise. */
  note: string;
}

/**
 * Waits for the holders' leases to expire and retries, within `deadline` (the clock's time),
 * when the option is on and every failure is an LV held only by hosts that stopped renewing.
 * Otherwise returns the failures as they are, at once. Never throws for the holders' sake.
 */
export async function waitForDeadHolders(
  deps: DeadWaitDeps,
  what: string,
  failures: LvFailure[],
  deadline: number,
  retry: () => Promise<LvFailure[]>,
): Promise<DeadWaitResult> {
  const { clock, logger, holders } = deps;
  if (!deps.enabled || !holders?.deadHolders || failures.length === 0) return { failures, note: '' };
  const wallNow = deps.wallNow ?? Date.now;
  let current = failures;
  let startedAt: number | undefined;
  const waited = (): string => `${Math.round((clock.now() - (startedAt ?? clock.now())) / 1000)} s`;
  for (;;) {
    const verdict = await holders.deadHolders(current, Math.min(HOLDER_BUDGET_MS, deadline - clock.now())).catch((err: unknown) => ({
      dead: false as const,
      why: `the holders could not be looked up: ${(err as Error).message}`,
    }));
    if (!verdict.dead) {
      if (startedAt === undefined) return { failures: current, note: '' };
      logger.notice(`${what}: stopped waiting for the holders after ${waited()}: ${verdict.why}`);
      return { failures: current, note: ` (waited ${waited()} for the holders' leases to expire, then stopped: ${verdict.why})` };
    }
    const now = clock.now();
    const expiry = now + verdict.freeInS * 1000;
    const at = Math.max(expiry + DEAD_WAIT_MARGIN_MS, startedAt === undefined ? now : now + DEAD_RETRY_MS);
    if (at > deadline - DEAD_RESERVE_MS) {
      const when = `${clockTime(wallNow() + (expiry - now), wallNow())} (in ${Math.max(0, verdict.freeInS)} s)`;
      if (startedAt === undefined) {
        return {
          failures: current,
          note: ` (not waiting for the holders: ${verdict.said}; their locks free at about ${when}, after this hook's deadline: hook.timeout (${formatDuration(deps.hookTimeoutMs)}) is too short for the wait)`,
        };
      }
      logger.notice(`${what}: stopped waiting for the holders after ${waited()}: sanlock still refuses and the hook's time is running out`);
      return { failures: current, note: ` (waited ${waited()} for the holders' leases to expire; sanlock still refused when the hook's time ran out)` };
    }
    if (startedAt === undefined) {
      startedAt = now;
      logger.notice(`${what}: refused only by holders that stopped renewing (${verdict.said}); waiting ${Math.round((at - now) / 1000)} s for their leases to expire (hook.wait_for_dead_holder)`);
    }
    await clock.sleep(at - now);
    current = await retry();
    if (current.length === 0) {
      logger.notice(`${what}: got the locks after waiting ${waited()} for the holders' leases to expire`);
      return { failures: current, note: '' };
    }
  }
}

/** The wait's deps from the engine's context, read at each hook so a reload applies. */
export function deadWaitDeps(ctx: EngineContext): DeadWaitDeps {
  return {
    clock: ctx.clock,
    logger: ctx.logger,
    holders: ctx.deps.holders,
    enabled: ctx.deps.waitForDeadHolder?.() ?? false,
    hookTimeoutMs: ctx.deps.hookTimeoutMs(),
  };
}
