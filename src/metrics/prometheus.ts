/**
 * The Metrics interface on a prom-client registry of its own (not the library's global one, so
 * nothing else in the process can add series to the exposition). Updates are label lookups and
 * additions; what depends on the lock table is counted only when scraped.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LockMode, TargetMode } from '../locks/lv.js';
import type { HookVerdict, Metrics } from './api.js';
import { CAUSE_LABELS, causeLabel, hookOpLabel } from './labels.js';

const PREFIX = 'virt_lvmlockd_';

/** Seconds. lvmlockd takes about 5.5 s to refuse a lock held elsewhere; a hook may wait up to minutes. */
const HOOK_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Seconds. A handoff is a peer round trip plus two lvchanges, bounded by migration.demote_timeout. */
const HANDOFF_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60];
/** Seconds. A reconcile reads every running domain and the LVM state. */
const RECONCILE_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Durations come from the wall clock, which a time step can move backwards: never below zero. */
function seconds(ms: number): number {
  return Math.max(0, ms) / 1000;
}

export interface MetricsSources {
  /** The locks this host holds now (the lock table), counted at each scrape. */
  held(): Iterable<{ mode: LockMode }>;
}

export class PrometheusMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly transitions: Counter<'result' | 'cause' | 'to'>;
  private readonly hookSeconds: Histogram<'op' | 'verdict'>;
  private readonly handoffSeconds: Histogram<'result'>;
  private readonly reconcileSeconds: Histogram;
  private readonly reconcileProblems: Counter;
  private readonly lastProblems: Gauge;
  private readonly peerUp: Gauge<'peer'>;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    this.transitions = new Counter({
      name: `${PREFIX}transitions_total`,
      help: `Lock transitions of one LV, by result (ok, failed), cause (${CAUSE_LABELS.join(', ')}) and target mode (ex, sh, off).`,
      labelNames: ['result', 'cause', 'to'],
      registers,
    });
    this.hookSeconds = new Histogram({
      name: `${PREFIX}hook_duration_seconds`,
      help: 'Time the daemon took to answer a libvirt qemu hook call, by op and verdict (allowed, refused, error).',
      labelNames: ['op', 'verdict'],
      buckets: HOOK_BUCKETS,
      registers,
    });
    this.handoffSeconds = new Histogram({
      name: `${PREFIX}handoff_duration_seconds`,
      help: 'Destination side of a live migration handoff: asking the holder to demote, then taking sh; by result (ok, failed).',
      labelNames: ['result'],
      buckets: HANDOFF_BUCKETS,
      registers,
    });
    this.reconcileSeconds = new Histogram({
      name: `${PREFIX}reconcile_duration_seconds`,
      help: 'Duration of completed reconcile runs (libvirt and LVM read, differences fixed).',
      buckets: RECONCILE_BUCKETS,
      registers,
    });
    this.reconcileProblems = new Counter({
      name: `${PREFIX}reconcile_problems_total`,
      help: 'Problems reported by reconcile runs; a problem that persists is counted again at every run.',
      registers,
    });
    this.lastProblems = new Gauge({
      name: `${PREFIX}reconcile_last_problems`,
      help: 'Problems reported by the last completed reconcile run.',
      registers,
    });
    new Gauge({
      name: `${PREFIX}locks_held`,
      help: 'LV locks this host holds, by mode (ex, sh), as the lock table knows them.',
      labelNames: ['mode'],
      registers,
      collect() {
        let ex = 0;
        let sh = 0;
        for (const lock of sources.held()) {
          if (lock.mode === 'ex') ex++;
          else sh++;
        }
        this.set({ mode: 'ex' }, ex);
        this.set({ mode: 'sh' }, sh);
      },
    });
    this.peerUp = new Gauge({
      name: `${PREFIX}peer_reachable`,
      help: 'Whether the last request to a peer got an answer (1) or none (0); absent until the first request.',
      labelNames: ['peer'],
      registers,
    });
  }

  transition(result: 'ok' | 'failed', cause: string, to: TargetMode): void {
    this.transitions.inc({ result, cause: causeLabel(cause), to });
  }

  hookAnswered(op: string, verdict: HookVerdict, ms: number): void {
    this.hookSeconds.observe({ op: hookOpLabel(op), verdict }, seconds(ms));
  }

  handoffDone(result: 'ok' | 'failed', ms: number): void {
    this.handoffSeconds.observe({ result }, seconds(ms));
  }

  reconciled(ms: number, problems: number): void {
    this.reconcileSeconds.observe(seconds(ms));
    this.reconcileProblems.inc(problems);
    this.lastProblems.set(problems);
  }

  peerReply(peer: string, reachable: boolean): void {
    this.peerUp.set({ peer }, reachable ? 1 : 0);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  exposition(): Promise<string> {
    return this.registry.metrics();
  }
}
