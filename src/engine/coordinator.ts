import { HOOK_OPS } from '../config/types.js';
import { DomainXmlError, type DomainDisks } from '../domain/disks.js';
import { parseDomainXmlAsync } from '../domain/parse-async.js';
import type { LibvirtClient } from '../libvirt/client.js';
import { DomainEvent, DomainState, PausedReason, ResumedDetail, StartedDetail, SuspendedDetail, eventName } from '../libvirt/enums.js';
import { lvKey, type LockMode, type TargetMode } from '../locks/lv.js';
import { KeyedMutex, KeyedQueue } from '../locks/queue.js';
import type { DomainEntry, LockTable, Phase } from '../locks/table.js';
import type { AuditLog } from '../log/audit.js';
import type { Logger } from '../log/logger.js';
import { describeFailure, type LvFailure } from '../lvm/errors.js';
import type { Lvm } from '../lvm/lvm.js';
import {
  type Action,
  type HookOp,
  currentModes,
  decideHook,
  groupTransitions,
  isMigrating,
  localConflicts,
  modesFor,
  planReconcile,
  releaseTarget,
  releaseTargets,
  type RunningDomain,
  takeTargets,
} from './policy.js';
import type { DiskResolver, ResolvedDisks } from '../domain/resolver.js';
import type { PeerHost } from '../config/types.js';
import type { PeerReply } from '../peers/client.js';
import type { PeerAnswer, PeerMessage, PeerMessageKind } from '../peers/messages.js';
import { type Clock, systemClock, type Timer } from './clock.js';

/** A refusal the hook passes to libvirt, which shows it to the user and aborts the start or migration. */
export class HookRefusal extends Error {}

export interface HookRequest {
  name: string;
  op: string;
  subop: string;
  extra: string;
  xml: string;
}

export interface ReconcileReport {
  cause: string;
  at: number;
  ms: number;
  domains: number;
  took: string[];
  released: string[];
  problems: string[];
  /** Where the time went: reading domains from libvirt, reading locks from LVM, fixing. */
  phasesMs?: { domains: number; lvm: number; fix: number };
}

export interface CoordinatorDeps {
  lvm: Pick<Lvm, 'change' | 'heldLocks'>;
  libvirt: Pick<LibvirtClient, 'listActiveDomains' | 'domainXml' | 'storagePools' | 'jobActive' | 'domainState'>;
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
}

export interface PeerLink {
  hosts(): PeerHost[];
  send(peer: PeerHost, kind: PeerMessageKind, message: PeerMessage): Promise<PeerReply>;
}

/** The share of the hook's wait the daemon may use; the rest covers the hook's own process and bus. */
const HOOK_DEADLINE_SHARE = 0.9;

/**
 * Carries out the policy: turns hook calls, libvirt events and reconcile plans into LVM transitions
 * on each domain's serial queue, keeps the table and writes the audit log. Decisions come from
 * policy.ts; this class only does the I/O they call for.
 */
export class Coordinator {
  readonly queue = new KeyedQueue();
  private readonly mutex = new KeyedMutex();
  private readonly clock: Clock;
  private readonly startGraceMs: number;
  private readonly promoteRetry: { first: number; max: number };
  private reconciling: Promise<ReconcileReport> | undefined;
  private nextReconcile: Promise<ReconcileReport> | undefined;
  private readonly stoppedAt = new Map<string, number>();
  private readonly retryTimers = new Map<string, Timer>();
  private readonly demoteWatches = new Map<string, Timer>();
  lastReconcile: ReconcileReport | undefined;
  private stopped = false;

  constructor(private readonly deps: CoordinatorDeps) {
    this.clock = deps.clock ?? systemClock;
    this.startGraceMs = deps.startGraceMs ?? 120_000;
    // Short: after a migration the destination should be ex within seconds even if the
    // source's notice is lost.
    this.promoteRetry = deps.promoteRetryMs ?? { first: 500, max: 4000 };
  }

  // ---- hook gateway -------------------------------------------------------------------------

  /** Answers a hook call; throws HookRefusal with a one-line reason to fail it. */
  async hook(req: HookRequest): Promise<string> {
    if (!(HOOK_OPS as readonly string[]).includes(req.op)) return `unknown hook op ${req.op}: nothing to do`;
    const op = req.op as HookOp;
    const deadline = this.clock.now() + this.deps.hookTimeoutMs() * HOOK_DEADLINE_SHARE;
    let disks: DomainDisks;
    try {
      disks = await parseDomainXmlAsync(req.xml);
    } catch (err) {
      const why = err instanceof DomainXmlError ? err.message : String(err as Error);
      throw new HookRefusal(`cannot read the domain XML of ${req.name || 'an unnamed domain'} for ${op}: ${why}`);
    }
    if (op === 'release' && req.subop === 'end') {
      return this.queue.run(disks.uuid, () => this.releaseForHook(disks));
    }
    const actions = this.deps.actions();
    // A cheap first look, so ops with nothing to do never wait behind the domain's queue.
    if (decideHook(op, req.subop, this.deps.table.domains.get(disks.uuid), actions).kind === 'allow' && op !== 'prepare' && op !== 'migrate') {
      return `${op} ${req.subop}: nothing to do`;
    }
    const resolved = await this.deps.resolver.resolve(disks.name, disks.disks);
    return this.queue.run(disks.uuid, async () => {
      const decision = decideHook(op, req.subop, this.deps.table.domains.get(disks.uuid), actions);
      if (decision.kind === 'allow') return decision.note;
      if (resolved.errors.length > 0) {
        throw new HookRefusal(`${op} of domain ${disks.name}: cannot tell which LVs to lock: ${resolved.errors.join('; ')}`);
      }
      if (resolved.wanted.size === 0) return `domain ${disks.name} uses no managed LV`;
      if (this.clock.now() > deadline) throw new HookRefusal(`${op} of domain ${disks.name}: the daemon was too busy to answer in time; nothing was locked`);
      return this.takeForHook(disks, op, resolved, modesFor(resolved.wanted, decision.modes), decision.phase, deadline);
    });
  }

  private async takeForHook(
    disks: DomainDisks,
    op: HookOp,
    resolved: ResolvedDisks,
    modes: Map<string, LockMode>,
    phase: Phase,
    deadline: number,
  ): Promise<string> {
    const { table } = this.deps;
    const conflicts = localConflicts(table, disks.uuid, modes);
    if (conflicts.length > 0) {
      throw new HookRefusal(`${op} of domain ${disks.name} refused: ${conflicts.map((c) => `${c.lv}: ${c.reason}`).join('; ')}`);
    }
    const previous = table.domains.get(disks.uuid);
    const heldBefore = new Set([...modes.keys()].filter((lv) => table.held.has(lv)));
    // Registered before any lvchange runs, so a concurrent reconcile never sees these LVs as orphans.
    const entry: DomainEntry = {
      uuid: disks.uuid,
      name: disks.name,
      phase,
      since: this.clock.now(),
      wanted: new Map(modes),
      own: new Map(resolved.wanted),
      aliases: resolved.aliases,
    };
    table.domains.set(disks.uuid, entry);
    this.stoppedAt.delete(disks.uuid);

    let failures = await this.apply(entry, modes, `hook ${op}`);
    let peersSaid = '';
    if (op === 'migrate' && failures.some((f) => f.cls === 'locked-by-other-host')) {
      const handoff = await this.demoteAtPeers(entry, failures, modes, deadline);
      failures = handoff.failures;
      peersSaid = handoff.peersSaid;
    }
    const late = this.clock.now() > deadline;
    if (failures.length === 0 && !late) {
      return `domain ${disks.name}: ${[...modes].map(([lv, m]) => `${lv} ${m}`).join(', ')}`;
    }

    // Fail closed without leaking: give back what this call took and nobody else here holds.
    if (previous) table.domains.set(disks.uuid, previous);
    else table.domains.delete(disks.uuid);
    const rollback = new Map<string, TargetMode>([...modes.keys()].filter((lv) => !heldBefore.has(lv)).map((lv) => [lv, 'off']));
    if (rollback.size > 0) {
      const rollbackFailures = await this.apply(entry, rollback, `rollback of failed ${op}`, (lv) => (table.usersOf(lv).length === 0 ? 'off' : undefined));
      for (const f of rollbackFailures) this.deps.logger.error(`rollback after failed ${op} of ${disks.name}: ${describeFailure(f)}`);
    }
    if (failures.length === 0) {
      throw new HookRefusal(`${op} of domain ${disks.name}: the locks were granted only after the hook's time ran out, so they were given back`);
    }
    if (op === 'migrate' && entry.peer) this.notifyPeers(entry, 'migration-failed', [...modes.keys()]);
    throw new HookRefusal(`${op} of domain ${disks.name} refused: ${failures.map((f) => describeFailure(f)).join('; ')}${peersSaid}`);
  }

  // ---- migration handoff ---------------------------------------------------------------------

  /**
   * Destination: the source holds the LVs ex. Ask the peer that holds them (lvm names its
   * host_id on lvm >= 2.03.33) or every peer to demote, then take sh, retrying while sanlock
   * settles, within migration.demote_timeout.
   */
  private async demoteAtPeers(
    entry: DomainEntry,
    failures: LvFailure[],
    modes: Map<string, LockMode>,
    hookDeadline: number,
  ): Promise<{ failures: LvFailure[]; peersSaid: string }> {
    const link = this.deps.peers;
    const hosts = link?.hosts() ?? [];
    if (!link || hosts.length === 0) {
      return { failures, peersSaid: ' (no peers are configured to hand the lock over; run "virt-lvmlockctl migrate-out DOMAIN" on the source first)' };
    }
    const hostIds = new Set(failures.map((f) => f.hostId).filter((id): id is number => id !== undefined));
    const named = hosts.filter((h) => h.hostId !== undefined && hostIds.has(h.hostId));
    const asked = named.length > 0 ? named : hosts;
    const lvs = [...modes.keys()].sort();
    const replies = await Promise.all(asked.map((peer) => link.send(peer, 'demote', { domain: entry.uuid, lvs })));
    const said = replies.map((r) => `${r.peer}: ${r.ok ? (r.answer?.detail ?? 'demoted') : r.error}`).join('; ');
    const demoted = replies.find((r) => r.ok && r.answer?.result === 'demoted');
    if (!demoted) return { failures, peersSaid: ` (peers said: ${said})` };
    entry.peer = demoted.peer;
    this.deps.logger.notice(`domain ${entry.name}: ${demoted.peer} demoted its locks for the incoming migration`);

    const deadline = Math.min(hookDeadline, this.clock.now() + this.deps.migration().demoteTimeoutMs);
    let remaining = failures;
    // The peer answered after its lvchange finished, so the first retry goes at once.
    let delay = 0;
    while (remaining.length > 0 && this.clock.now() + delay < deadline) {
      if (delay > 0) await this.clock.sleep(delay);
      delay = Math.min(Math.max(delay * 2, 200), 2000);
      // Right after a demotion sanlock can still refuse sh for a moment: retry what failed.
      const retry = new Map<string, TargetMode>(remaining.filter((f) => f.lv).map((f) => [lvKey(f.lv!), 'sh']));
      remaining = await this.apply(entry, retry, `hook migrate (after ${demoted.peer} demoted)`);
    }
    return { failures: remaining, peersSaid: remaining.length ? ` (peers said: ${said}; sh still refused after ${this.deps.migration().demoteTimeoutMs} ms)` : '' };
  }

  /** Source: a peer asks us to demote a running domain's LVs to sh before its QEMU opens them. */
  async onPeerMessage(kind: PeerMessageKind, msg: PeerMessage, peer: string): Promise<PeerAnswer> {
    return this.queue.run(msg.domain, async () => {
      const entry = this.deps.table.domains.get(msg.domain);
      if (!entry) return { result: 'not-held', detail: `domain ${msg.domain} holds no locks on this host` };
      const missing = msg.lvs.filter((lv) => !entry.wanted.has(lv));
      switch (kind) {
        case 'demote':
          if (missing.length > 0) return { result: 'not-held', detail: `domain ${entry.name} does not use ${missing.join(', ')} on this host` };
          return this.demoteForPeer(entry, peer, `demote requested by ${peer}`);
        case 'released':
          entry.peer ??= peer;
          if (entry.phase !== 'running') return { result: 'noted', detail: `domain ${entry.name} is ${entry.phase} here; it takes its modes when it runs` };
          this.cancelRetry(entry.uuid);
          await this.promote(entry, `${peer} released`);
          return { result: 'promoted', detail: `domain ${entry.name}: ${entry.lastError ?? 'own modes taken'}` };
        case 'migration-failed':
          if (entry.phase !== 'migrating-out' || entry.switchedOver) {
            return { result: 'noted', detail: `domain ${entry.name} is ${entry.phase}${entry.switchedOver ? ' past the switchover' : ''} here` };
          }
          await this.toRunning(entry, `migration to ${peer} failed`);
          return { result: 'promoted', detail: `domain ${entry.name}: ${entry.lastError ?? 'exclusive again'}` };
      }
    });
  }

  private async demoteForPeer(entry: DomainEntry, peer: string | undefined, cause: string, manual = false): Promise<PeerAnswer> {
    if (entry.phase !== 'running' && entry.phase !== 'migrating-out') {
      return { result: 'refused', detail: `domain ${entry.name} is ${entry.phase} on this host, not running` };
    }
    const before = entry.phase;
    entry.peer = peer;
    entry.switchedOver = false;
    this.setPhase(entry, 'migrating-out');
    entry.wanted = currentModes(entry.own, entry.phase);
    const targets = new Map<string, TargetMode>([...entry.wanted].filter(([lv, m]) => this.deps.table.held.get(lv)?.mode !== m));
    const failures = targets.size ? await this.apply(entry, targets, cause) : [];
    if (failures.length > 0) {
      this.setPhase(entry, before === 'migrating-out' ? 'running' : before);
      await this.promote(entry, `demotion failed`);
      return { result: 'refused', detail: `domain ${entry.name}: ${failures.map(describeFailure).join('; ')}` };
    }
    this.watchDemoted(entry, manual);
    return { result: 'demoted', detail: `domain ${entry.name}: ${[...entry.wanted.keys()].join(', ')} sh on ${peer ? 'the source' : 'this host'}` };
  }

  /**
   * A failed migration before the switchover gives the source no event at all, so a demoted
   * source checks on its own: once no migration job runs, it takes its exclusive locks back.
   */
  private watchDemoted(entry: DomainEntry, manual: boolean): void {
    const grace = this.deps.migration().promoteGraceMs;
    const delay = manual ? Math.max(grace * 12, 120_000) : grace;
    const timer = this.clock.after(delay, () => {
      this.demoteWatches.delete(entry.uuid);
      void (async () => {
        if (this.deps.table.domains.get(entry.uuid) !== entry || entry.phase !== 'migrating-out' || entry.switchedOver) return;
        // Asked outside the domain's queue: a libvirt call must never hold it. When libvirt
        // cannot tell (a driver without job stats), wait out the longest a destination may still
        // be taking its shared lock; promoting is safe after that, since lvmlockd refuses ex while
        // another host holds sh.
        const m = this.deps.migration();
        const busy = await this.deps.libvirt
          .jobActive(entry.uuid)
          .catch(() => this.clock.now() - entry.since < m.demoteTimeoutMs + m.promoteGraceMs);
        await this.queue.run(entry.uuid, async () => {
          if (this.deps.table.domains.get(entry.uuid) !== entry || entry.phase !== 'migrating-out' || entry.switchedOver) return;
          if (busy) {
            this.watchDemoted(entry, false);
            return;
          }
          this.deps.logger.warning(`domain ${entry.name}: demoted for a migration that is no longer running; taking its own locks back`);
          await this.toRunning(entry, 'no migration job after demotion');
        });
      })().catch((err: unknown) => this.deps.logger.error(`checking the demoted domain ${entry.name} failed: ${(err as Error).message}`));
    });
    const old = this.demoteWatches.get(entry.uuid);
    old?.cancel();
    this.demoteWatches.set(entry.uuid, timer);
  }

  /** Best effort, retried a few times: safety never depends on these notices arriving. */
  private notifyPeers(entry: DomainEntry, kind: PeerMessageKind, lvs: string[]): void {
    const link = this.deps.peers;
    if (!link || lvs.length === 0) return;
    const named = entry.peer ? link.hosts().filter((h) => h.name === entry.peer) : [];
    const targets = named.length ? named : link.hosts();
    const message = { domain: entry.uuid, lvs: [...lvs].sort() };
    for (const peer of targets) {
      void (async () => {
        for (let attempt = 0; attempt < 3; attempt++) {
          const reply = await link.send(peer, kind, message);
          if (reply.ok || reply.status === 404) {
            this.deps.logger.info(`told ${peer.name} ${kind} for domain ${entry.name}: ${reply.answer?.detail ?? reply.error ?? 'ok'}`);
            return;
          }
          await this.clock.sleep(500 * 2 ** attempt);
        }
        this.deps.logger.warning(`could not tell ${peer.name} ${kind} for domain ${entry.name}; it will find out by its own retries`);
      })();
    }
  }

  /** `virt-lvmlockctl migrate-out`: demote before a migration that no peer will ask for. */
  async migrateOut(domain: string): Promise<string> {
    const uuid = this.findDomain(domain);
    const answer = await this.queue.run(uuid, async () => {
      const entry = this.deps.table.domains.get(uuid);
      if (!entry) return { result: 'not-held', detail: `domain ${domain} holds no locks here` } as PeerAnswer;
      return this.demoteForPeer(entry, undefined, 'migrate-out requested by the admin', true);
    });
    if (answer.result !== 'demoted') throw new Error(answer.detail);
    return `${answer.detail}; migrate now: without a migration it takes its exclusive locks back after a while`;
  }

  /** `virt-lvmlockctl settle`: promote or release to match what libvirt says runs here. */
  async settle(domain: string): Promise<string> {
    const uuid = this.findDomain(domain);
    const running = (await this.deps.libvirt.listActiveDomains()).includes(uuid);
    const busy = running ? await this.deps.libvirt.jobActive(uuid).catch(() => false) : false;
    return this.queue.run(uuid, async () => {
      const entry = this.deps.table.domains.get(uuid);
      if (!entry) return `domain ${domain} holds no locks here; nothing to settle`;
      if (!running) {
        await this.releaseDomain(entry, 'settle: not running here');
        return `domain ${entry.name} does not run here: ${entry.lastError ?? 'released'}`;
      }
      if (busy) throw new Error(`domain ${entry.name} has a job running (a migration?); settle it when the job has ended`);
      entry.switchedOver = false;
      await this.toRunning(entry, 'settle requested by the admin');
      return `domain ${entry.name} runs here: ${entry.lastError ? `still refused: ${entry.lastError}` : [...entry.wanted].map(([lv, m]) => `${lv} ${m}`).join(', ')}`;
    });
  }

  private findDomain(domain: string): string {
    const { table } = this.deps;
    if (table.domains.has(domain.toLowerCase())) return domain.toLowerCase();
    const byName = [...table.domains.values()].filter((e) => e.name === domain);
    if (byName.length === 1) return byName[0].uuid;
    throw new Error(`no domain named or with UUID ${domain} holds locks on this host`);
  }

  /**
   * libvirt runs `release end` when a domain's QEMU is gone, also after a start or an incoming
   * migration failed before any event: the only signal that those locks are free to go.
   */
  private async releaseForHook(disks: DomainDisks): Promise<string> {
    const entry = this.deps.table.domains.get(disks.uuid);
    if (!entry) return `domain ${disks.name} holds nothing here`;
    await this.releaseDomain(entry, 'hook release end');
    return `domain ${disks.name}: released`;
  }

  // ---- transitions ---------------------------------------------------------------------------

  /**
   * Runs the transitions (one lvchange per VG per mode), updates the table and the audit log.
   * `recheck`, when given, decides each LV's target again under the LVs' mutex, so nobody can
   * register a use of an LV between that decision and the lvchange (undefined: leave it alone).
   */
  private async apply(
    domain: { uuid: string; name: string; peer?: string },
    requested: Map<string, TargetMode>,
    cause: string,
    recheck?: (lv: string) => TargetMode | undefined,
  ): Promise<LvFailure[]> {
    const { table, lvm, audit } = this.deps;
    const release = await this.mutex.lock([...requested.keys()]);
    try {
      const targets = new Map<string, TargetMode>();
      for (const [lv, to] of requested) {
        const now = recheck ? recheck(lv) : to;
        if (now) targets.set(lv, now);
      }
      const results = await Promise.all(
        groupTransitions(targets).map(async (t) => {
          const from = new Map(t.lvs.map((lv) => [lv, table.held.get(lvKey({ vg: t.vg, lv }))?.mode ?? 'none']));
          const result = await lvm.change(t.vg, t.lvs, t.to).catch((err: unknown) => ({
            ok: false,
            ms: 0,
            failures: t.lvs.map((lv): LvFailure => ({ lv: { vg: t.vg, lv }, cls: 'failed', message: (err as Error).message })),
          }));
          const failures: LvFailure[] = [];
          for (const lv of t.lvs) {
            const key = lvKey({ vg: t.vg, lv });
            const failure = result.ok ? undefined : result.failures.find((f) => f.lv?.vg === t.vg && f.lv.lv === lv);
            if (failure) {
              failures.push(failure);
              // A killed command leaves the state unknown: forget the cache, reconcile reads it back.
              if (failure.cls === 'timeout') table.held.delete(key);
            } else {
              table.setHeld(key, t.to, this.clock.now());
            }
            audit.record({
              domain: domain.name,
              uuid: domain.uuid,
              lv: key,
              from: from.get(lv) ?? 'none',
              to: t.to,
              result: failure ? 'failed' : 'ok',
              ms: result.ms,
              cause,
              peer: domain.peer,
              reason: failure ? describeFailure(failure) : undefined,
            });
          }
          return failures;
        }),
      );
      return results.flat();
    } finally {
      release();
    }
  }

  // ---- libvirt events ------------------------------------------------------------------------

  onDomainEvent(uuid: string, event: number, detail: number): Promise<void> {
    const name = eventName(event, detail);
    this.deps.logger.debug(`event ${name} for domain ${uuid}`);
    return this.queue
      .run(uuid, () => this.handleEvent(uuid, event, detail))
      .catch((err: unknown) => this.deps.logger.error(`handling ${name} of domain ${uuid} failed: ${(err as Error).message}`));
  }

  private async handleEvent(uuid: string, event: number, detail: number): Promise<void> {
    const { table } = this.deps;
    const entry = table.domains.get(uuid);
    switch (event) {
      case DomainEvent.Started:
        if (!entry) {
          // Started without our hook (hook not installed, or we missed it): adopt by reconcile.
          this.reconcileSoon(`domain ${uuid} started without a hook call`);
          return;
        }
        this.refreshAliasesSoon(uuid);
        if (detail === StartedDetail.Migrated) return;
        // A fresh start of a domain we thought incoming (a migration that failed at Prepare) runs here now.
        if (entry.phase !== 'running') await this.toRunning(entry, eventName(event, detail));
        return;
      case DomainEvent.Suspended:
        if (!entry) return;
        if (detail === SuspendedDetail.Migrated || detail === SuspendedDetail.Postcopy) {
          if (entry.phase === 'running') this.setPhase(entry, 'migrating-out');
          if (entry.phase === 'migrating-out') entry.switchedOver = true;
        } else if (entry.phase === 'incoming' && detail === SuspendedDetail.Paused) {
          // A migration with VIR_MIGRATE_PAUSED ends with the guest paused here.
          await this.toRunning(entry, eventName(event, detail));
        }
        return;
      case DomainEvent.Resumed:
        if (!entry) return;
        if (detail === ResumedDetail.Postcopy) {
          this.deps.logger.notice(`domain ${entry.name} runs post-copy; its LVs stay shared until the source stops`);
          return;
        }
        if (detail === ResumedDetail.PostcopyFailed) {
          this.deps.logger.error(
            `domain ${entry.name}: post-copy migration failed; its LVs stay shared on both hosts. Recover the migration (virsh migrate --postcopy-resume) or destroy one side, then run "virt-lvmlockctl reconcile"`,
          );
          return;
        }
        // Resumed/Migrated: the destination after success, or the source after a migration that
        // failed past the switchover. Either way the guest runs here and needs its own modes.
        if (isMigrating(entry.phase)) await this.toRunning(entry, eventName(event, detail));
        return;
      case DomainEvent.Stopped:
        this.stoppedAt.set(uuid, this.clock.now());
        if (!entry) return;
        if (entry.phase === 'starting') {
          // A start in progress cannot have stopped: this is the previous run's late event, and
          // its locks went with that run's release hook.
          this.deps.logger.info(`ignoring ${eventName(event, detail)} of ${entry.name}: it belongs to the run before the current start`);
          return;
        }
        await this.releaseDomain(entry, `stopped (${eventName(event, detail)})`);
        return;
      default:
        return;
    }
  }

  private async toRunning(entry: DomainEntry, cause: string): Promise<void> {
    this.setPhase(entry, 'running');
    await this.promote(entry, cause);
  }

  private setPhase(entry: DomainEntry, phase: Phase): void {
    if (entry.phase === phase) return;
    this.deps.logger.info(`domain ${entry.name} (${entry.uuid}) phase ${entry.phase} -> ${phase}`);
    entry.phase = phase;
    entry.since = this.clock.now();
  }

  private async releaseDomain(entry: DomainEntry, cause: string): Promise<void> {
    const { table } = this.deps;
    this.cancelRetry(entry.uuid);
    const watch = this.demoteWatches.get(entry.uuid);
    watch?.cancel();
    this.demoteWatches.delete(entry.uuid);
    // The other host of a migration learns at once: the destination can take ex, or the
    // source its ex back when the incoming side gave up.
    const notice: PeerMessageKind | undefined =
      entry.phase === 'migrating-out' ? 'released' : entry.phase === 'incoming' ? 'migration-failed' : undefined;
    const lvs = [...entry.wanted.keys()];
    const targets = releaseTargets(table, entry.uuid);
    const failures =
      targets.size > 0 ? await this.apply(entry, targets, cause, (lv) => releaseTarget(table, entry.uuid, lv)) : [];
    if (notice && failures.length === 0) this.notifyPeers(entry, notice, lvs);
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
    this.deps.logger.error(`domain ${entry.name}: ${cause}, but some locks could not be released (retried at each reconcile): ${entry.lastError}`);
  }

  /** Back to the domain's own modes; retried with backoff while refused (the other host may still hold sh). */
  private async promote(entry: DomainEntry, cause: string, delay = this.promoteRetry.first): Promise<void> {
    entry.wanted = currentModes(entry.own, entry.phase);
    const targets = new Map<string, TargetMode>();
    for (const [lv, mode] of entry.wanted) if (this.deps.table.held.get(lv)?.mode !== mode) targets.set(lv, mode);
    if (targets.size === 0) return;
    const failures = await this.apply(entry, targets, cause);
    if (failures.length === 0) {
      entry.lastError = undefined;
      return;
    }
    entry.lastError = failures.map(describeFailure).join('; ');
    this.deps.logger.warning(`domain ${entry.name}: cannot take its own lock modes yet (${entry.lastError}); retrying in ${delay} ms`);
    this.cancelRetry(entry.uuid);
    if (this.stopped) return;
    const timer = this.clock.after(delay, () => {
      this.retryTimers.delete(entry.uuid);
      void this.queue
        .run(entry.uuid, async () => {
          if (this.deps.table.domains.get(entry.uuid) === entry && entry.phase === 'running') {
            await this.promote(entry, `${cause} (retry)`, Math.min(delay * 2, this.promoteRetry.max));
          }
        })
        .catch((err: unknown) => this.deps.logger.error(`promotion retry of ${entry.name} failed: ${(err as Error).message}`));
    });
    this.retryTimers.set(entry.uuid, timer);
  }

  private cancelRetry(uuid: string): void {
    const timer = this.retryTimers.get(uuid);
    timer?.cancel();
    this.retryTimers.delete(uuid);
  }

  /**
   * Device aliases exist only in the live XML, which the start hook never sees: read it once QEMU
   * runs, outside the domain's queue, so a later hot-unplug can be mapped to its LVs.
   */
  private refreshAliasesSoon(uuid: string): void {
    void (async () => {
      const disks = await parseDomainXmlAsync(await this.deps.libvirt.domainXml(uuid));
      const resolved = await this.deps.resolver.resolve(disks.name, disks.disks);
      await this.queue.run(uuid, async () => {
        const entry = this.deps.table.domains.get(uuid);
        if (entry) entry.aliases = resolved.aliases;
      });
    })().catch((err: unknown) => this.deps.logger.debug(`cannot read the live XML of ${uuid} for its device aliases: ${(err as Error).message}`));
  }

  /** A hot-plugged disk: take its LVs (the admin activated them before AttachDevice; no hook runs). */
  async onDeviceAdded(uuid: string, alias: string): Promise<void> {
    // Read outside the domain's queue: a libvirt call must never hold it.
    const xml = await this.deps.libvirt.domainXml(uuid);
    const disks = await parseDomainXmlAsync(xml);
    const resolved = await this.deps.resolver.resolve(disks.name, disks.disks);
    for (const e of resolved.errors) this.deps.logger.error(`domain ${disks.name}: device ${alias} added: ${e}`);
    await this.queue.run(uuid, async () => {
      const entry = this.deps.table.domains.get(uuid);
      if (!entry) {
        this.reconcileSoon(`device ${alias} added to a domain not in the table`);
        return;
      }
      for (const [a, lvs] of resolved.aliases) entry.aliases.set(a, lvs);
      const added = new Map<string, LockMode>();
      for (const [lv, mode] of resolved.wanted) if (!entry.own.has(lv)) added.set(lv, isMigrating(entry.phase) ? 'sh' : mode);
      if (added.size === 0) return;
      for (const c of localConflicts(this.deps.table, uuid, added)) {
        this.deps.logger.error(`domain ${entry.name}: hot-plugged ${c.lv} ${c.reason}; the disk is in use WITHOUT its lock`);
        added.delete(c.lv);
      }
      for (const [lv, mode] of added) {
        entry.wanted.set(lv, mode);
        entry.own.set(lv, resolved.wanted.get(lv) ?? mode);
      }
      const failures = await this.apply(entry, added, `device ${alias} added`);
      for (const f of failures) {
        this.deps.logger.error(`domain ${entry.name}: hot-plugged ${describeFailure(f)}; the disk is in use WITHOUT its lock`);
      }
    });
  }

  async onDeviceRemoved(uuid: string, alias: string): Promise<void> {
    await this.queue.run(uuid, async () => {
      const entry = this.deps.table.domains.get(uuid);
      const lvs = entry?.aliases.get(alias);
      if (!entry || !lvs) {
        // Aliases are known once the live XML was read; until then reconcile finds the unused LV.
        if (entry) this.reconcileSoon(`device ${alias} removed from ${entry.name}`);
        return;
      }
      entry.aliases.delete(alias);
      const stillUsed = new Set([...entry.aliases.values()].flat());
      const targets = new Map<string, TargetMode>();
      for (const lv of lvs) {
        if (stillUsed.has(lv)) continue;
        entry.wanted.delete(lv);
        entry.own.delete(lv);
        targets.set(lv, 'off');
      }
      if (targets.size > 0) {
        await this.apply(entry, targets, `device ${alias} removed`, (lv) => (this.deps.table.usersOf(lv).length === 0 ? 'off' : undefined));
      }
    });
  }

  // ---- reconcile -----------------------------------------------------------------------------

  /**
   * Requests share runs, but never one that started before them: a request during a run gets
   * the next run, which every request made meanwhile shares.
   */
  reconcile(cause: string): Promise<ReconcileReport> {
    if (!this.reconciling) {
      this.reconciling = this.runReconcile(cause).finally(() => {
        this.reconciling = undefined;
      });
      return this.reconciling;
    }
    this.nextReconcile ??= this.reconciling
      .catch(() => undefined)
      .then(() => {
        this.nextReconcile = undefined;
        return this.reconcile(cause);
      });
    return this.nextReconcile;
  }

  /** A reconcile nobody waits for: its failure is logged, never thrown. */
  reconcileSoon(cause: string): void {
    this.reconcile(cause).catch((err: unknown) => this.deps.logger.error(`reconcile (${cause}) failed: ${(err as Error).message}`));
  }

  private async runReconcile(cause: string): Promise<ReconcileReport> {
    const { libvirt, lvm, resolver, table, logger } = this.deps;
    const started = this.clock.now();
    const report: ReconcileReport = { cause, at: started, ms: 0, domains: 0, took: [], released: [], problems: [] };

    await resolver.refreshVgs();
    try {
      resolver.setPools(await libvirt.storagePools());
    } catch (err) {
      report.problems.push(`cannot list storage pools: ${(err as Error).message}`);
    }
    // Domains are read a few at a time: libvirt-dbus answers calls concurrently, and one at a
    // time would make a large host's reconcile wait on every round trip in turn.
    const uuids = await libvirt.listActiveDomains();
    const running = await mapConcurrent(uuids, 8, async (uuid): Promise<RunningDomain> => {
      const known = table.domains.get(uuid);
      let disks: DomainDisks;
      try {
        disks = await parseDomainXmlAsync(await libvirt.domainXml(uuid));
      } catch (err) {
        // Listed but unreadable (a slow call, or gone meanwhile): keep what the table knows.
        if (!/not found|no domain/i.test((err as Error).message)) report.problems.push(`domain ${uuid}: ${(err as Error).message}`);
        return { uuid, name: known?.name ?? uuid, own: new Map(), aliases: new Map(), complete: false };
      }
      const resolved = await resolver.resolve(disks.name, disks.disks);
      for (const e of resolved.errors) report.problems.push(`domain ${disks.name}: ${e}`);
      // A domain the table does not know (daemon restarted) may be mid-migration: ask libvirt.
      const migration = known || resolved.wanted.size === 0 ? undefined : await this.migrationHint(uuid);
      return { uuid, name: disks.name, own: resolved.wanted, aliases: resolved.aliases, complete: resolved.errors.length === 0, migration };
    });
    report.domains = running.length;
    const domainsDone = this.clock.now();

    const held = await lvm.heldLocks(resolver.managedVgs());
    const lvmDone = this.clock.now();
    // lvmlockd is the truth: the cache takes what it says, keeping the age of unchanged locks.
    for (const lv of [...table.held.keys()]) if (!held.has(lv)) table.held.delete(lv);
    for (const [lv, mode] of held) table.setHeld(lv, mode, this.clock.now());

    const plan = planReconcile({ running, held, table, now: this.clock.now(), startGraceMs: this.startGraceMs });
    report.problems.push(...plan.problems);

    const guard = (what: string) => (err: unknown) => {
      report.problems.push(`${what}: ${(err as Error).message}`);
    };
    await Promise.all(
      running.map((domain) =>
        this.queue
          .run(domain.uuid, async () => {
            const stopped = this.stoppedAt.get(domain.uuid);
            if (stopped !== undefined && stopped >= started) return; // stopped while we were reading
            const entry = this.upsertRunning(domain);
            if (!entry) return;
            // Decided now, from the current phase, not from the plan made before the queue.
            const { take } = takeTargets(table, domain.uuid);
            if (take.size === 0) return;
            const failures = await this.apply(entry, take, `reconcile (${cause})`);
            for (const lv of take.keys()) if (!failures.some((f) => f.lv && lvKey(f.lv) === lv)) report.took.push(lv);
            for (const f of failures) report.problems.push(`domain ${domain.name}: ${describeFailure(f)}`);
            entry.lastError = failures.length ? failures.map(describeFailure).join('; ') : undefined;
          })
          .catch(guard(`domain ${domain.name}`)),
      ),
    );
    await Promise.all(
      plan.forget.map((uuid) =>
        this.queue
          .run(uuid, async () => {
            const entry = table.domains.get(uuid);
            if (!entry || entry.since >= started) return;
            if (entry.phase !== 'releasing') logger.warning(`domain ${entry.name} (${uuid}) is no longer running; releasing its locks`);
            await this.releaseDomain(entry, `reconcile (${cause}): domain gone`);
            if (entry.phase === 'releasing' && entry.lastError) report.problems.push(`domain ${entry.name}: ${entry.lastError}`);
          })
          .catch(guard(`domain ${uuid}`)),
      ),
    );
    for (const lv of plan.release) {
      try {
        const released = await this.releaseOrphan(lv, cause);
        if (released === true) report.released.push(lv);
        else if (typeof released === 'string') report.problems.push(released);
      } catch (err) {
        guard(lv)(err);
      }
    }
    for (const [uuid, at] of this.stoppedAt) if (at < started - 600_000) this.stoppedAt.delete(uuid);

    report.ms = this.clock.now() - started;
    report.phasesMs = { domains: domainsDone - started, lvm: lvmDone - domainsDone, fix: this.clock.now() - lvmDone };
    this.lastReconcile = report;
    const summary = `reconcile (${cause}): ${report.domains} running domains, took ${report.took.length}, released ${report.released.length}, ${report.problems.length} problems in ${report.ms} ms`;
    if (report.problems.length) logger.warning(`${summary}: ${report.problems.join('; ')}`);
    else logger.info(summary);
    return report;
  }

  /** An incoming migration shows as paused for migration; an outgoing one as a running job. */
  private async migrationHint(uuid: string): Promise<'incoming' | 'outgoing' | undefined> {
    try {
      const { state, reason } = await this.deps.libvirt.domainState(uuid);
      if (state === DomainState.Paused && reason === PausedReason.Migration) return 'incoming';
      if (state === DomainState.Running && (await this.deps.libvirt.jobActive(uuid))) return 'outgoing';
    } catch {
      // Drivers without job stats, or a domain gone meanwhile: nothing to infer.
    }
    return undefined;
  }

  private upsertRunning(domain: RunningDomain): DomainEntry | undefined {
    const { table } = this.deps;
    const existing = table.domains.get(domain.uuid);
    if (!domain.complete) return existing;
    if (existing) {
      if (existing.phase === 'starting' || existing.phase === 'releasing') this.setPhase(existing, 'running');
      existing.own = new Map(domain.own);
      existing.wanted = currentModes(domain.own, existing.phase);
      existing.aliases = domain.aliases;
      existing.name = domain.name;
      return existing;
    }
    if (domain.own.size === 0) return undefined;
    // Restarted mid-migration: an incoming guest keeps sh; an outgoing one that already holds
    // sh keeps it until the migration ends (its Stopped or Resumed event settles it).
    const holdsShared = [...domain.own.keys()].some((lv) => this.deps.table.held.get(lv)?.mode === 'sh' && domain.own.get(lv) === 'ex');
    const phase: Phase = domain.migration === 'incoming' ? 'incoming' : domain.migration === 'outgoing' && holdsShared ? 'migrating-out' : 'running';
    if (phase !== 'running') this.deps.logger.notice(`domain ${domain.name} is in a migration (${domain.migration}); keeping its LVs shared`);
    const entry: DomainEntry = {
      uuid: domain.uuid,
      name: domain.name,
      phase,
      since: this.clock.now(),
      wanted: currentModes(domain.own, phase),
      own: new Map(domain.own),
      aliases: domain.aliases,
    };
    table.domains.set(domain.uuid, entry);
    if (phase === 'migrating-out') this.watchDemoted(entry, false);
    return entry;
  }

  /** Releases a held LV no local domain uses; rechecked under the LV's mutex, right before lvchange. */
  private async releaseOrphan(lv: string, cause: string): Promise<boolean | string> {
    const { table } = this.deps;
    let unused = false;
    const failures = await this.apply({ uuid: '-', name: '-' }, new Map<string, TargetMode>([[lv, 'off']]), `reconcile (${cause}): no local domain uses it`, (key) => {
      unused = table.usersOf(key).length === 0;
      return unused ? 'off' : undefined;
    });
    if (!unused) return false;
    if (failures.length === 0) return true;
    return `${lv} is held but unused and cannot be released: ${failures.map(describeFailure).join('; ')}`;
  }

  stop(): void {
    this.stopped = true;
    for (const uuid of [...this.retryTimers.keys()]) this.cancelRetry(uuid);
    for (const timer of this.demoteWatches.values()) timer.cancel();
    this.demoteWatches.clear();
  }
}

/** Maps with at most `limit` calls in flight, keeping the input order. */
async function mapConcurrent<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
