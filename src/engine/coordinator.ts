import { HOOK_OPS } from '../config/types.js';
import { DomainXmlError, parseDomainXml, type DomainDisks } from '../domain/disks.js';
import type { LibvirtClient } from '../libvirt/client.js';
import { DomainEvent, ResumedDetail, StartedDetail, SuspendedDetail, eventName } from '../libvirt/enums.js';
import type { LockMode, TargetMode } from '../locks/lv.js';
import { KeyedMutex, KeyedQueue } from '../locks/queue.js';
import type { DomainEntry, LockTable, Phase } from '../locks/table.js';
import type { AuditLog } from '../log/audit.js';
import type { Logger } from '../log/logger.js';
import { describeFailure, type LvFailure } from '../lvm/errors.js';
import type { Lvm } from '../lvm/lvm.js';
import {
  type Action,
  type HookOp,
  decideHook,
  groupTransitions,
  localConflicts,
  modesFor,
  planReconcile,
  releaseTargets,
  type RunningDomain,
} from './policy.js';
import type { DiskResolver } from './resolver.js';

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
}

export interface CoordinatorDeps {
  lvm: Pick<Lvm, 'change' | 'heldLocks'>;
  libvirt: Pick<LibvirtClient, 'listActiveDomains' | 'domainXml' | 'storagePools'>;
  resolver: DiskResolver;
  table: LockTable;
  audit: AuditLog;
  logger: Logger;
  actions: () => Record<HookOp, Action>;
  now?: () => number;
  /** How long a domain whose start hook took locks may stay unseen by libvirt before they are released. */
  startGraceMs?: number;
  /** Promotion retries after an incoming migration: first delay, doubled up to the max. */
  promoteRetryMs?: { first: number; max: number };
}


/**
 * Carries out the policy: turns hook calls, libvirt events and reconcile plans into LVM transitions
 * on each domain's serial queue, keeps the table and writes the audit log. Decisions come from
 * policy.ts; this class only does the I/O they call for.
 */
export class Coordinator {
  readonly queue = new KeyedQueue();
  private readonly mutex = new KeyedMutex();
  private readonly now: () => number;
  private readonly startGraceMs: number;
  private readonly promoteRetry: { first: number; max: number };
  private reconciling: Promise<ReconcileReport> | undefined;
  private readonly stoppedAt = new Map<string, number>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  lastReconcile: ReconcileReport | undefined;
  private stopped = false;

  constructor(private readonly deps: CoordinatorDeps) {
    this.now = deps.now ?? Date.now;
    this.startGraceMs = deps.startGraceMs ?? 120_000;
    this.promoteRetry = deps.promoteRetryMs ?? { first: 1000, max: 30_000 };
  }

  // ---- hook gateway -------------------------------------------------------------------------

  /** Answers a synchronous hook call; throws HookRefusal with a one-line reason to fail it. */
  async hook(req: HookRequest): Promise<string> {
    if (!(HOOK_OPS as readonly string[]).includes(req.op)) return `unknown hook op ${req.op}: nothing to do`;
    const op = req.op as HookOp;
    let disks: DomainDisks;
    try {
      disks = parseDomainXml(req.xml);
    } catch (err) {
      const why = err instanceof DomainXmlError ? err.message : String(err as Error);
      throw new HookRefusal(`cannot read the domain XML of ${req.name || 'an unnamed domain'} for ${op}: ${why}`);
    }
    const entry = this.deps.table.domains.get(disks.uuid);
    const decision = decideHook(op, req.subop, entry, this.deps.actions());
    if (decision.kind === 'allow') return decision.note;

    const resolved = await this.deps.resolver.resolve(disks.name, disks.disks);
    if (resolved.errors.length > 0) {
      throw new HookRefusal(`${op} of domain ${disks.name}: cannot tell which LVs to lock: ${resolved.errors.join('; ')}`);
    }
    if (resolved.wanted.size === 0) return `domain ${disks.name} uses no managed LV`;
    const modes = modesFor(resolved.wanted, decision.modes);
    return this.queue.run(disks.uuid, () => this.takeForHook(disks, op, modes, decision.phase, resolved.aliases));
  }

  private async takeForHook(
    disks: DomainDisks,
    op: HookOp,
    modes: Map<string, LockMode>,
    phase: Phase,
    aliases: Map<string, string[]>,
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
      since: this.now(),
      wanted: new Map(modes),
      aliases: previous?.aliases.size ? previous.aliases : aliases,
    };
    if (previous) for (const [lv, m] of previous.wanted) if (!entry.wanted.has(lv)) entry.wanted.set(lv, m);
    table.domains.set(disks.uuid, entry);
    this.stoppedAt.delete(disks.uuid);

    const failures = await this.apply(entry, modes, `hook ${op}`);
    if (failures.length === 0) {
      entry.lastError = undefined;
      return `domain ${disks.name}: ${[...modes].map(([lv, m]) => `${lv} ${m}`).join(', ')}`;
    }

    // Fail closed without leaking: give back what this call took and nobody else here holds.
    const rollback = new Map<string, TargetMode>();
    for (const lv of modes.keys()) {
      if (!heldBefore.has(lv) && table.usersOf(lv, disks.uuid).length === 0) rollback.set(lv, 'off');
    }
    if (previous) table.domains.set(disks.uuid, previous);
    else table.domains.delete(disks.uuid);
    if (rollback.size > 0) {
      const rollbackFailures = await this.apply(entry, rollback, `rollback of failed ${op}`);
      for (const f of rollbackFailures) this.deps.logger.error(`rollback after failed ${op} of ${disks.name}: ${describeFailure(f)}`);
    }
    const reasons = failures.map((f) => describeFailure(f)).join('; ');
    throw new HookRefusal(`${op} of domain ${disks.name} refused: ${reasons}`);
  }

  // ---- transitions ---------------------------------------------------------------------------

  /** Runs the transitions (one lvchange per VG per mode), updates the table and the audit log. */
  private async apply(
    domain: { uuid: string; name: string },
    requested: Map<string, TargetMode>,
    cause: string,
    stillWanted?: (lv: string) => boolean,
  ): Promise<LvFailure[]> {
    const { table, lvm, audit } = this.deps;
    const release = await this.mutex.lock([...requested.keys()]);
    try {
      // Checked under the LVs' mutex, so nobody can register a use of them between check and lvchange.
      const targets = stillWanted ? new Map([...requested].filter(([lv]) => stillWanted(lv))) : requested;
      const results = await Promise.all(
        groupTransitions(targets).map(async (t) => {
          const from = new Map(t.lvs.map((lv) => [lv, table.held.get(`${t.vg}/${lv}`)?.mode ?? 'none']));
          const result = await lvm.change(t.vg, t.lvs, t.to);
          const failures: LvFailure[] = [];
          for (const lv of t.lvs) {
            const key = `${t.vg}/${lv}`;
            const failure = result.ok ? undefined : result.failures.find((f) => f.lv?.vg === t.vg && f.lv.lv === lv);
            if (failure) {
              failures.push(failure);
              // A killed command leaves the state unknown: forget the cache, reconcile reads it back.
              if (failure.cls === 'timeout') table.held.delete(key);
            } else {
              table.setHeld(key, t.to, this.now());
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
          // Started without our hook (hook not installed, or events replayed): adopt by reconcile.
          void this.reconcile(`domain ${uuid} started without a hook call`);
          return;
        }
        if (detail !== StartedDetail.Migrated && entry.phase === 'starting') this.setPhase(entry, 'running');
        return;
      case DomainEvent.Suspended:
        if (entry && (detail === SuspendedDetail.Migrated || detail === SuspendedDetail.Postcopy)) this.setPhase(entry, 'migrating-out');
        return;
      case DomainEvent.Resumed:
        if (!entry) return;
        if (detail === ResumedDetail.Migrated && (entry.phase === 'incoming' || entry.phase === 'migrating-out')) {
          // Destination after a successful migration, or source after one that failed past the
          // switchover: the guest runs here and needs its own modes back.
          this.setPhase(entry, 'running');
          await this.promote(entry, 'resumed after migration');
        } else if (detail === ResumedDetail.Postcopy) {
          this.deps.logger.notice(`domain ${entry.name} runs post-copy; its LVs stay shared until the source stops`);
        }
        return;
      case DomainEvent.Stopped:
        this.stoppedAt.set(uuid, this.now());
        if (!entry) return;
        await this.releaseDomain(entry, `stopped (${eventName(event, detail)})`);
        return;
      default:
        return;
    }
  }

  private setPhase(entry: DomainEntry, phase: Phase): void {
    if (entry.phase === phase) return;
    this.deps.logger.info(`domain ${entry.name} (${entry.uuid}) phase ${entry.phase} -> ${phase}`);
    entry.phase = phase;
    entry.since = this.now();
  }

  private async releaseDomain(entry: DomainEntry, cause: string): Promise<void> {
    const { table } = this.deps;
    this.cancelRetry(entry.uuid);
    const targets = releaseTargets(table, entry.uuid);
    const failures = targets.size > 0 ? await this.apply(entry, targets, cause) : [];
    if (failures.length === 0) {
      table.domains.delete(entry.uuid);
      return;
    }
    // Keep the entry for the LVs still held, so status shows them and reconcile retries.
    for (const [lv] of targets) if (!failures.some((f) => f.lv && `${f.lv.vg}/${f.lv.lv}` === lv)) entry.wanted.delete(lv);
    entry.lastError = failures.map(describeFailure).join('; ');
    this.deps.logger.error(`domain ${entry.name} stopped but some locks could not be released: ${entry.lastError}`);
    table.domains.delete(entry.uuid);
  }

  /** sh -> own modes; retried with backoff while refused, since the other host may still hold sh. */
  private async promote(entry: DomainEntry, cause: string, delay = this.promoteRetry.first): Promise<void> {
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
    const timer = setTimeout(() => {
      this.retryTimers.delete(entry.uuid);
      void this.queue
        .run(entry.uuid, async () => {
          const current = this.deps.table.domains.get(entry.uuid);
          if (current === entry) await this.promote(entry, `${cause} (retry)`, Math.min(delay * 2, this.promoteRetry.max));
        })
        .catch((err: unknown) => this.deps.logger.error(`promotion retry of ${entry.name} failed: ${(err as Error).message}`));
    }, delay);
    timer.unref();
    this.retryTimers.set(entry.uuid, timer);
  }

  private cancelRetry(uuid: string): void {
    const timer = this.retryTimers.get(uuid);
    if (timer) clearTimeout(timer);
    this.retryTimers.delete(uuid);
  }

  /** A hot-plugged disk: take its LVs (the admin activated them before AttachDevice; no hook runs). */
  async onDeviceAdded(uuid: string, alias: string): Promise<void> {
    let disks: DomainDisks;
    try {
      disks = parseDomainXml(await this.deps.libvirt.domainXml(uuid));
    } catch (err) {
      this.deps.logger.error(`device ${alias} added to domain ${uuid}, but its XML cannot be read: ${(err as Error).message}`);
      return;
    }
    const resolved = await this.deps.resolver.resolve(disks.name, disks.disks);
    await this.queue.run(uuid, async () => {
      const entry = this.deps.table.domains.get(uuid);
      if (!entry) return;
      for (const [a, lvs] of resolved.aliases) entry.aliases.set(a, lvs);
      const added = new Map<string, LockMode>();
      for (const [lv, mode] of resolved.wanted) if (!entry.wanted.has(lv)) added.set(lv, mode);
      if (added.size === 0) return;
      const conflicts = localConflicts(this.deps.table, uuid, added);
      for (const c of conflicts) {
        this.deps.logger.error(`domain ${entry.name}: hot-plugged ${c.lv} ${c.reason}`);
        added.delete(c.lv);
      }
      for (const [lv, mode] of added) entry.wanted.set(lv, entry.phase === 'incoming' ? 'sh' : mode);
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
      if (!entry || !lvs) return;
      entry.aliases.delete(alias);
      const stillUsed = new Set([...entry.aliases.values()].flat());
      const targets = new Map<string, TargetMode>();
      for (const lv of lvs) {
        if (stillUsed.has(lv)) continue;
        entry.wanted.delete(lv);
        if (this.deps.table.usersOf(lv).length === 0) targets.set(lv, 'off');
      }
      if (targets.size > 0) await this.apply(entry, targets, `device ${alias} removed`);
    });
  }

  // ---- reconcile -----------------------------------------------------------------------------

  /** Concurrent requests share one run. */
  reconcile(cause: string): Promise<ReconcileReport> {
    this.reconciling ??= this.runReconcile(cause).finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  private async runReconcile(cause: string): Promise<ReconcileReport> {
    const { libvirt, lvm, resolver, table, logger } = this.deps;
    const started = this.now();
    const report: ReconcileReport = { cause, at: started, ms: 0, domains: 0, took: [], released: [], problems: [] };

    await resolver.refreshVgs();
    try {
      resolver.setPools(await libvirt.storagePools());
    } catch (err) {
      report.problems.push(`cannot list storage pools: ${(err as Error).message}`);
    }
    const running: RunningDomain[] = [];
    for (const uuid of await libvirt.listActiveDomains()) {
      let disks: DomainDisks;
      try {
        disks = parseDomainXml(await libvirt.domainXml(uuid));
      } catch (err) {
        // A domain can vanish between the list and the call; anything else is worth reporting.
        if (!/not found|no domain/i.test((err as Error).message)) report.problems.push(`domain ${uuid}: ${(err as Error).message}`);
        continue;
      }
      const resolved = await resolver.resolve(disks.name, disks.disks);
      for (const e of resolved.errors) report.problems.push(`domain ${disks.name}: ${e}`);
      running.push({ uuid, name: disks.name, wanted: resolved.wanted, aliases: resolved.aliases });
    }
    report.domains = running.length;

    const held = await lvm.heldLocks(resolver.managedVgs());
    // lvmlockd is the truth: the cache takes what it says, keeping the age of unchanged locks.
    for (const lv of [...table.held.keys()]) if (!held.has(lv)) table.held.delete(lv);
    for (const [lv, mode] of held) table.setHeld(lv, mode, this.now());

    const plan = planReconcile({ running, held, table, now: this.now(), startGraceMs: this.startGraceMs });
    report.problems.push(...plan.problems);

    await Promise.all(
      running.map((domain) =>
        this.queue.run(domain.uuid, async () => {
          const stopped = this.stoppedAt.get(domain.uuid);
          if (stopped !== undefined && stopped >= started) return; // stopped while we were reading
          const entry = this.upsertRunning(domain);
          const take = plan.take.get(domain.uuid);
          if (!take || take.size === 0) return;
          const conflicts = localConflicts(table, domain.uuid, take);
          for (const c of conflicts) {
            report.problems.push(`domain ${domain.name}: ${c.lv} ${c.reason}`);
            take.delete(c.lv);
          }
          const failures = await this.apply(entry, take, `reconcile (${cause})`);
          for (const lv of take.keys()) if (!failures.some((f) => f.lv && `${f.lv.vg}/${f.lv.lv}` === lv)) report.took.push(lv);
          for (const f of failures) report.problems.push(`domain ${domain.name}: ${describeFailure(f)}`);
          entry.lastError = failures.length ? failures.map(describeFailure).join('; ') : undefined;
        }),
      ),
    );
    await Promise.all(
      plan.forget.map((uuid) =>
        this.queue.run(uuid, async () => {
          const entry = table.domains.get(uuid);
          if (!entry || entry.since >= started) return;
          logger.warning(`domain ${entry.name} (${uuid}) is no longer running; releasing its locks`);
          await this.releaseDomain(entry, `reconcile (${cause}): domain gone`);
        }),
      ),
    );
    for (const lv of plan.release) {
      const released = await this.releaseOrphan(lv, cause);
      if (released === true) report.released.push(lv);
      else if (typeof released === 'string') report.problems.push(released);
    }

    report.ms = this.now() - started;
    this.lastReconcile = report;
    const summary = `reconcile (${cause}): ${report.domains} running domains, took ${report.took.length}, released ${report.released.length}, ${report.problems.length} problems in ${report.ms} ms`;
    if (report.problems.length) logger.warning(`${summary}: ${report.problems.join('; ')}`);
    else logger.info(summary);
    return report;
  }

  private upsertRunning(domain: RunningDomain): DomainEntry {
    const { table } = this.deps;
    const existing = table.domains.get(domain.uuid);
    if (existing) {
      if (existing.phase === 'starting') this.setPhase(existing, 'running');
      const migrating = existing.phase === 'incoming' || existing.phase === 'migrating-out';
      existing.wanted = new Map([...domain.wanted].map(([lv, m]) => [lv, migrating ? 'sh' : m]));
      existing.aliases = domain.aliases;
      existing.name = domain.name;
      return existing;
    }
    const entry: DomainEntry = {
      uuid: domain.uuid,
      name: domain.name,
      phase: 'running',
      since: this.now(),
      wanted: new Map(domain.wanted),
      aliases: domain.aliases,
    };
    table.domains.set(domain.uuid, entry);
    return entry;
  }

  /** Releases a held LV no local domain uses; rechecked under the LV's mutex, right before lvchange. */
  private async releaseOrphan(lv: string, cause: string): Promise<boolean | string> {
    const { table } = this.deps;
    let unused = false;
    const failures = await this.apply(
      { uuid: '-', name: '-' },
      new Map<string, TargetMode>([[lv, 'off']]),
      `reconcile (${cause}): no local domain uses it`,
      (key) => (unused = table.usersOf(key).length === 0),
    );
    if (!unused) return false;
    if (failures.length === 0) return true;
    return `${lv} is held but unused and cannot be released: ${failures.map(describeFailure).join('; ')}`;
  }

  stop(): void {
    this.stopped = true;
    for (const uuid of [...this.retryTimers.keys()]) this.cancelRetry(uuid);
  }
}
