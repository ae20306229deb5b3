/**
 * What the engine reports to metrics. The engine sees only this interface, so it never loads the
 * exposition library, and tests and the simulation run with the no-op below.
 */
import type { TargetMode } from '../locks/lv.js';

/** How a hook call ended: answered (libvirt goes on), refused (libvirt aborts), or failed inside the daemon. */
export type HookVerdict = 'allowed' | 'refused' | 'error';

export interface Metrics {
  /** One LV's lock transition, as audited: its result, the engine's cause text, and the mode asked for. */
  transition(result: 'ok' | 'failed', cause: string, to: TargetMode): void;
  /** A hook call answered after `ms`. */
  hookAnswered(op: string, verdict: HookVerdict, ms: number): void;
  /** The destination's handoff (ask the holder to demote, then take sh) ended after `ms`. */
  handoffDone(result: 'ok' | 'failed', ms: number): void;
  /** A reconcile run completed after `ms` and found `problems`. */
  reconciled(ms: number, problems: number): void;
  /** The last request to a peer got an answer (reachable) or none (refused connection, TLS failure, timeout). */
  peerReply(peer: string, reachable: boolean): void;
}

/** Metrics off: every call is a no-op. */
export const noMetrics: Metrics = {
  transition: () => undefined,
  hookAnswered: () => undefined,
  handoffDone: () => undefined,
  reconciled: () => undefined,
  peerReply: () => undefined,
};
