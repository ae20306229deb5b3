import { type DomainDisks } from '../domain/disks.js';
import { parseDomainXmlAsync } from '../domain/parse-async.js';
import { lvKey, type TargetMode } from '../locks/lv.js';
import type { DomainEntry, Phase } from '../locks/table.js';
import { describeFailure } from '../lvm/errors.js';
import type { EngineContext } from './context.js';
import type { OwnedLv } from './owned.js';
import type { Handoff } from './handoff.js';
import type { Lifecycle } from './lifecycle.js';
import type { MigrationView, MigrationWatch } from './migration-watch.js';
import { currentModes, isMigrating, planReconcile, type RunningDomain, takeTargets } from './policy.js';
import { mapConcurrent } from './map-concurrent.js';
import type { Transitions } from './transitions.js';

export interface ReconcileReport {
  cause: string;
  at: number;
  ms: number;
  domains: number;
  took: string[];
  released: string[];
  problems: string[];
  /** Held LVs that no domain uses and this daemon did not take: an admin's; left alone. */
  notOurs: string[];
  /** Where the time went: reading domains from libvirt, reading locks from LVM, fixing. */
  phasesMs?: { domains: number; lvm: number; fix: number };
}


/**
 * Compares what runs (libvirt) with what lvmlockd holds, and fixes what it can: adopts running
 * domains, takes missing locks, releases what the daemon took for domains that are gone, and
 * brings a running guest whose migration is over back to its own modes.
 */
export class Reconciler {
  private running: Promise<ReconcileReport> | undefined;
  private next: Promise<ReconcileReport> | undefined;
  /** When a domain last stopped or had a device added or removed, by its events. */
  private readonly changedAt = new Map<string, number>();
  last: ReconcileReport | undefined;
  /** Set once a reconcile has completed: before that the table does not know what runs here. */
  ready = false;

  constructor(
    private readonly ctx: EngineContext,
    private readonly transitions: Transitions,
    private readonly lifecycle: Lifecycle,
    private readonly handoff: Handoff,
    private readonly watch: MigrationWatch,
  ) {}

  /** A Stopped or device event: a reconcile that read the domain before must not act on that read. */
  noteChanged(uuid: string): void {
    this.changedAt.set(uuid, this.ctx.clock.now());
  }

  /**
   * Requests share runs, but never one that started before them: a request during a run gets
   * the next run, which every request made meanwhile shares.
   */
  reconcile(cause: string): Promise<ReconcileReport> {
    if (!this.running) {
      this.running = this.run(cause).finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.reconcile(cause);
      });
    return this.next;
  }

  /** A reconcile nobody waits for: its failure is logged, never thrown. */
  soon(cause: string): void {
    this.reconcile(cause).catch((err: unknown) => this.ctx.logger.error(`reconcile (${cause}) failed: ${(err as Error).message}`));
  }

  private async run(cause: string): Promise<ReconcileReport> {
    const { clock, table, logger, queue, deps } = this.ctx;
    const { libvirt, lvm, resolver } = deps;
    const started = clock.now();
    const report: ReconcileReport = { cause, at: started, ms: 0, domains: 0, took: [], released: [], problems: [], notOurs: [] };

    await this.ctx.ownership.ready();
    await resolver.refreshVgs();
    try {
      resolver.setPools(await libvirt.storagePools());
    } catch (err) {
      report.problems.push(`cannot list storage pools: ${(err as Error).message}`);
    }
    const uuids = await libvirt.listActiveDomains();
    const views = new Map<string, MigrationView>();
    /** Something changed while it was read: read again soon rather than at the next timer. */
    let followUp = false;
    // Domains are read a few at a time: libvirt-dbus answers calls concurrently, and one at a
    // time would make a large host's reconcile wait on every round trip in turn.
    const running = await mapConcurrent(uuids, 8, async (uuid): Promise<RunningDomain> => {
      const known = table.domains.get(uuid);
      let disks: DomainDisks;
      try {
        disks = await parseDomainXmlAsync(await libvirt.domainXml(uuid));
      } catch (err) {
        // Listed but unreadable (a slow call, or gone meanwhile): keep what the table knows.
        if (/not found|no domain/i.test((err as Error).message)) followUp = true;
        else report.problems.push(`domain ${uuid}: ${(err as Error).message}`);
        return { uuid, name: known?.name ?? uuid, own: new Map(), aliases: new Map(), complete: false, unreadable: true };
      }
      const resolved = await resolver.resolve(disks.name, disks.disks);
      for (const e of resolved.errors) report.problems.push(`domain ${disks.name}: ${e}`);
      for (const w of resolved.warnings ?? []) report.problems.push(`domain ${disks.name}: ${w}`);
      // A domain the table does not know (daemon restarted), or one the table has in a migration
      // (its end event may have been lost): ask libvirt where the migration stands.
      if (resolved.wanted.size > 0 && (!known || isMigrating(known.phase))) views.set(uuid, await this.watch.view(uuid));
      const view = views.get(uuid);
      return {
        uuid,
        name: disks.name,
        own: resolved.wanted,
        aliases: resolved.aliases,
        complete: resolved.errors.length === 0,
        migration: view?.state === 'migrating' ? view.direction : undefined,
      };
    });
    report.domains = running.length;
    const domainsDone = clock.now();

    const held = await lvm.heldLocks(resolver.managedVgs());
    const lvmDone = clock.now();
    // A record of an LV lvmlockd does not hold is stale (a daemon crash between a release and
    // its record): forgotten, unless a change of that LV ran since the read began.
    const stale = [...table.owned.keys()].filter((lv) => !held.has(lv) && !this.transitions.changedSince(lv, domainsDone));
    await this.ctx.ownership.disclaim(stale);
    // lvmlockd is the truth: the cache takes what it says, keeping the age of unchanged locks.
    for (const lv of [...table.held.keys()]) if (!held.has(lv)) table.held.delete(lv);
    for (const [lv, mode] of held) table.setHeld(lv, mode, clock.now());

    const plan = planReconcile({
      running,
      held,
      table,
      now: clock.now(),
      startGraceMs: this.ctx.startGraceMs,
      owned: table.owned,
      releaseForeign: deps.releaseForeign?.() ?? false,
    });
    report.problems.push(...plan.problems);
    report.notOurs.push(...plan.notOurs);

    const guard = (what: string) => (err: unknown) => {
      report.problems.push(`${what}: ${(err as Error).message}`);
    };
    await Promise.all(
      running.map((domain) =>
        queue
          .run(domain.uuid, async () => {
            const changed = this.changedAt.get(domain.uuid);
            if (changed !== undefined && changed >= started) {
              // Stopped, or a disk hot-plugged or removed, while we were reading: what we read is
              // stale; a fresh read, soon, judges it.
              followUp = true;
              return;
            }
            const entry = await this.upsertRunning(domain, views.get(domain.uuid));
            if (!entry) return;
            // Decided now, from the current phase, not from the plan made before the queue.
            const { take } = takeTargets(table, domain.uuid);
            if (take.size === 0) return;
            const failures = await this.transitions.apply(entry, take, `reconcile (${cause})`);
            for (const lv of take.keys()) if (!failures.some((f) => f.lv && lvKey(f.lv) === lv)) report.took.push(lv);
            for (const f of failures) report.problems.push(`domain ${domain.name}: ${describeFailure(f)}`);
            entry.lastError = failures.length ? failures.map(describeFailure).join('; ') : undefined;
            // Refused while another host still holds the LV (a migration's other side): retry soon
            // rather than at the next reconcile.
            if (failures.length > 0 && entry.phase === 'running') this.lifecycle.retryLater(entry, `reconcile (${cause})`);
          })
          .catch(guard(`domain ${domain.name}`)),
      ),
    );
    await Promise.all(
      plan.forget.map((uuid) =>
        queue
          .run(uuid, async () => {
            const entry = table.domains.get(uuid);
            if (!entry || entry.since >= started) return;
            if (entry.phase !== 'releasing') logger.warning(`domain ${entry.name} (${uuid}) is no longer running; releasing its locks`);
            await this.lifecycle.releaseDomain(entry, `reconcile (${cause}): domain gone`);
            if (entry.phase === 'releasing' && entry.lastError) report.problems.push(`domain ${entry.name}: ${entry.lastError}`);
          })
          .catch(guard(`domain ${uuid}`)),
      ),
    );
    for (const lv of plan.release) {
      try {
        const released = await this.releaseOrphan(lv, cause, plan.foreignReleased.includes(lv));
        if (released === true) report.released.push(lv);
        else if (typeof released === 'string') report.problems.push(released);
      } catch (err) {
        guard(lv)(err);
      }
    }
    for (const [uuid, at] of this.changedAt) if (at < started - 600_000) this.changedAt.delete(uuid);
    if (followUp) this.soon(`${cause}: a domain changed while it was being read`);

    this.ready = true;
    report.ms = clock.now() - started;
    report.phasesMs = { domains: domainsDone - started, lvm: lvmDone - domainsDone, fix: clock.now() - lvmDone };
    this.last = report;
    this.ctx.metrics.reconciled(report.ms, report.problems.length);
    const summary = `reconcile (${cause}): ${report.domains} running domains, took ${report.took.length}, released ${report.released.length}, ${report.problems.length} problems in ${report.ms} ms`;
    if (report.notOurs.length) logger.notice(`reconcile (${cause}): held, not ours (left alone): ${report.notOurs.join(', ')}`);
    if (report.problems.length) logger.warning(`${summary}: ${report.problems.join('; ')}`);
    else logger.info(summary);
    return report;
  }

  private async upsertRunning(domain: RunningDomain, view: MigrationView | undefined): Promise<DomainEntry | undefined> {
    const { table, clock, logger, ownership } = this.ctx;
    const existing = table.domains.get(domain.uuid);
    if (existing) {
      existing.seenActive = true;
      if (existing.phase === 'starting' || existing.phase === 'releasing') this.lifecycle.setPhase(existing, 'running');
      if (domain.complete) {
        existing.own = new Map(domain.own);
        existing.aliases = domain.aliases;
      } else {
        // What did resolve is adopted; what could not be read keeps what the table knew.
        for (const [lv, mode] of domain.own) existing.own.set(lv, mode);
        for (const [alias, lvs] of domain.aliases) existing.aliases.set(alias, lvs);
      }
      existing.name = domain.name;
      if (isMigrating(existing.phase) && view?.state === 'settled' && !(existing.manualDemote && !existing.switchedOver)) {
        // The end of the migration was missed (a lost event): the guest runs here, on its own.
        logger.warning(`domain ${existing.name} runs here with no migration job but was ${existing.phase}; taking its own lock modes`);
        await this.lifecycle.toRunning(existing, 'reconcile: migration over');
        return existing;
      }
      existing.wanted = currentModes(existing.own, existing.phase);
      // Still in a migration: watch it, in case its end event never comes.
      if (isMigrating(existing.phase)) this.watch.watch(existing);
      await ownership.claim(this.records(existing));
      return existing;
    }
    // Not even its XML could be read: nothing to adopt yet; its LVs are kept, and the next
    // reconcile (or the Stopped event) decides.
    if (domain.unreadable) return undefined;
    const own = new Map(domain.own);
    if (!domain.complete) {
      // Disks that did not resolve: the LVs recorded as taken for this domain are still its own.
      for (const [lv, owner] of table.owned) if (owner.domain === domain.uuid && table.held.has(lv) && !own.has(lv)) own.set(lv, owner.mode ?? 'ex');
    }
    if (own.size === 0) return undefined;
    // Restarted mid-migration: an incoming guest keeps sh; an outgoing one that already holds
    // sh keeps it until the migration ends (its Stopped or Resumed event settles it).
    const holdsShared = [...own.keys()].some((lv) => table.held.get(lv)?.mode === 'sh' && own.get(lv) === 'ex');
    const phase: Phase = domain.migration === 'incoming' ? 'incoming' : domain.migration === 'outgoing' && holdsShared ? 'migrating-out' : 'running';
    if (phase !== 'running') logger.notice(`domain ${domain.name} is in a migration (${domain.migration}); keeping its LVs shared`);
    if (!domain.complete) logger.warning(`domain ${domain.name}: adopting the LVs that resolved or were taken for it (${[...own.keys()].join(', ')}); the rest could not be read`);
    const entry: DomainEntry = {
      uuid: domain.uuid,
      name: domain.name,
      phase,
      since: clock.now(),
      wanted: currentModes(own, phase),
      own,
      aliases: domain.aliases,
      incoming: phase === 'incoming' ? 'prepared' : undefined,
      seenActive: true,
    };
    table.domains.set(domain.uuid, entry);
    await ownership.claim(this.records(entry));
    if (phase === 'migrating-out') this.handoff.watchDemoted(entry, false);
    if (phase !== 'running') this.watch.watch(entry);
    return entry;
  }

  /** The held LVs of a running domain, as ownership records: adopted, they are ours. */
  private records(entry: DomainEntry): OwnedLv[] {
    return [...entry.wanted.keys()].filter((lv) => this.ctx.table.held.has(lv)).map((lv) => ({ lv, domain: entry.uuid, mode: entry.own.get(lv) }));
  }

  /** Releases a held LV no local domain uses; rechecked under the LV's mutex, right before lvchange. */
  private async releaseOrphan(lv: string, cause: string, foreign: boolean): Promise<boolean | string> {
    const { table } = this.ctx;
    let unused = false;
    const why = foreign ? 'not taken by this daemon, released because volumes.release_foreign is on' : 'no local domain uses it';
    const failures = await this.transitions.apply({ uuid: '-', name: '-' }, new Map<string, TargetMode>([[lv, 'off']]), `reconcile (${cause}): ${why}`, (key) => {
      unused = table.usersOf(key).length === 0 && (foreign || table.owned.has(key));
      return unused ? 'off' : undefined;
    });
    if (!unused) return false;
    if (failures.length === 0) return true;
    return `${lv} is held but unused and cannot be released: ${failures.map(describeFailure).join('; ')}`;
  }
}
