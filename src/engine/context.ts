import type { Action, HookOp, PeerHost } from '../config/types.js';
import type { DiskResolver } from '../domain/resolver.js';
import type { HolderSource } from '../holders/refusal.js';
import type { LibvirtClient } from '../libvirt/client.js';
import { KeyedQueue } from '../locks/queue.js';
import type { LockTable } from '../locks/table.js';
import type { AuditLog } from '../log/audit.js';
import type { Logger } from '../log/logger.js';
import type { Lvm } from '../lvm/lvm.js';
import { type Metrics, noMetrics } from '../metrics/api.js';
import type { PeerReply } from '../peers/client.js';
import type { PeerMessage, PeerMessageKind } from '../peers/messages.js';
import { type Clock, systemClock } from './clock.js';
import { type OwnedStore, Ownership, memoryOwnedStore } from './owned.js';

export interface PeerLink {
  hosts(): PeerHost[];
  send(peer: PeerHost, kind: PeerMessageKind, message: PeerMessage): Promise<PeerReply>;
}

/** What libvirt shows of a domain's migration: the job libvirt runs on it, if any. */
export type MigrationJob = 'out' | 'in' | 'other' | 'none' | 'busy';

export interface CoordinatorDeps {
  lvm: Pick<Lvm, 'change' | 'heldLocks'>;
  libvirt: Pick<LibvirtClient, 'listActiveDomains' | 'domainXml' | 'storagePools' | 'jobActive' | 'domainState'> & {
    /**
     * Which job runs on the domain; without it, any job counts as a migration. With `waitMs`, a
     * call libvirt holds back longer (behind a job that allows no queries) answers "busy".
     */
    migrationJob?(uuid: string, waitMs?: number): Promise<MigrationJob>;
  };
  /** The other daemons, for the migration handoff; absent without peer configuration. */
  peers?: PeerLink;
  migration: () => { demoteTimeoutMs: number; promoteGraceMs: number };
  resolver: DiskResolver;
  table: LockTable;
  audit: AuditLog;
  logger: Logger;
  actions: () => Record<HookOp, Action>;
  /** How long the hook waits for an answer: work that would finish later is refused and undone. */
  hookTimeoutMs: () => number;
  /** Time and timers; the system clock unless a simulation injects its own. */
  clock?: Clock;
  /** How long a domain whose start hook took locks may stay unseen by libvirt before they are released. */
  startGraceMs?: number;
  /** Promotion retries after an incoming migration: first delay, doubled up to the max. */
  promoteRetryMs?: { first: number; max: number };
  /**
   * How long after its `migrate begin` hook an incoming migration may take to reach `prepare begin`.
   * libvirt runs the two back to back; an incoming that never gets there was abandoned (an offline
   * migration, or one that failed in between) and gives its shared locks back.
   */
  incomingPrepareWindowMs?: number;
  /** Where the LVs the daemon took are remembered across restarts. */
  owned?: OwnedStore;
  /** Whether reconcile may release held LVs that no domain uses and the daemon did not take. */
  releaseForeign?: () => boolean;
  /** Where transitions, hook answers, handoffs and reconciles are counted; none unless metrics are on. */
  metrics?: Metrics;
  /** Who holds an LV another host has locked, for refusals and the handoff; absent: not looked up. */
  holders?: HolderSource;
  /** hook.wait_for_dead_holder: a start refused only by holders that stopped renewing waits for their leases. */
  waitForDeadHolder?: () => boolean;
}

/** What every engine module shares: the deps, with defaults filled in, and the per-domain queue. */
export interface EngineContext {
  deps: CoordinatorDeps;
  clock: Clock;
  queue: KeyedQueue;
  table: LockTable;
  logger: Logger;
  metrics: Metrics;
  ownership: Ownership;
  startGraceMs: number;
  promoteRetry: { first: number; max: number };
  incomingPrepareWindowMs: number;
  /** Set at stop(): no new timers. */
  stopped: boolean;
}

export function makeContext(deps: CoordinatorDeps): EngineContext {
  return {
    deps,
    clock: deps.clock ?? systemClock,
    queue: new KeyedQueue(),
    table: deps.table,
    logger: deps.logger,
    metrics: deps.metrics ?? noMetrics,
    ownership: new Ownership(deps.table.owned, deps.owned ?? memoryOwnedStore(), (m) => deps.logger.error(m)),
    startGraceMs: deps.startGraceMs ?? 120_000,
    // Short: after a migration the destination should be ex within seconds even if the
    // source's notice is lost.
    promoteRetry: deps.promoteRetryMs ?? { first: 500, max: 4000 },
    incomingPrepareWindowMs: deps.incomingPrepareWindowMs ?? 3_000,
    stopped: false,
  };
}

/** A refusal the hook passes to libvirt, which shows it to the user and aborts the start or migration. */
export class HookRefusal extends Error {}
