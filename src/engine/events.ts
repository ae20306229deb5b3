import { parseDomainXmlAsync } from '../domain/parse-async.js';
import { DomainEvent, ResumedDetail, StartedDetail, SuspendedDetail, eventName } from '../libvirt/enums.js';
import type { LockMode, TargetMode } from '../locks/lv.js';
import { describeFailure } from '../lvm/errors.js';
import type { EngineContext } from './context.js';
import type { Lifecycle } from './lifecycle.js';
import { isMigrating, localConflicts } from './policy.js';
import type { MigrationWatch } from './migration-watch.js';
import type { Reconciler } from './reconcile.js';
import type { Transitions } from './transitions.js';

/** libvirt's lifecycle and device events, after the fact: phases, promotions and releases. */
export class LibvirtEvents {
  constructor(
    private readonly ctx: EngineContext,
    private readonly transitions: Transitions,
    private readonly lifecycle: Lifecycle,
    private readonly reconciler: Reconciler,
    private readonly watch: MigrationWatch,
  ) {}

  onDomainEvent(uuid: string, event: number, detail: number): Promise<void> {
    const name = eventName(event, detail);
    this.ctx.logger.debug(`event ${name} for domain ${uuid}`);
    return this.ctx.queue
      .run(uuid, () => this.handle(uuid, event, detail))
      .catch((err: unknown) => this.ctx.logger.error(`handling ${name} of domain ${uuid} failed: ${(err as Error).message}`));
  }

  private async handle(uuid: string, event: number, detail: number): Promise<void> {
    const { table, logger } = this.ctx;
    const entry = table.domains.get(uuid);
    switch (event) {
      case DomainEvent.Defined:
        // An offline migration ends with the domain defined here and no prepare: the incoming
        // state it announced is not a migration libvirt carries out, so give its sh back now.
        if (entry?.phase === 'incoming' && entry.incoming === 'announced') {
          logger.warning(`domain ${entry.name} was defined here without a prepare after its migrate hook (an offline migration); giving back its shared locks`);
          await this.lifecycle.releaseDomain(entry, `offline migration (${eventName(event, detail)})`);
        }
        return;
      case DomainEvent.Started:
        if (!entry) {
          // Started without our hook (hook not installed, or we missed it): adopt by reconcile.
          this.reconciler.soon(`domain ${uuid} started without a hook call`);
          return;
        }
        entry.seenActive = true;
        this.refreshAliasesSoon(uuid);
        if (detail === StartedDetail.Migrated) {
          // The incoming QEMU runs paused; its end (Resumed/Migrated) may be lost: watch for it.
          if (entry.phase === 'incoming') this.watch.watch(entry);
          return;
        }
        // A fresh start of a domain we thought incoming (a migration that failed at Prepare) runs here now.
        if (entry.phase !== 'running') await this.lifecycle.toRunning(entry, eventName(event, detail));
        return;
      case DomainEvent.Suspended:
        if (!entry) return;
        if (detail === SuspendedDetail.Migrated || detail === SuspendedDetail.Postcopy) {
          if (entry.phase === 'running') this.lifecycle.setPhase(entry, 'migrating-out');
          if (entry.phase === 'migrating-out') {
            entry.switchedOver = true;
            // Past the switchover the guest either stops here or resumes here; watch in case the event is lost.
            this.watch.watch(entry);
          }
        } else if (entry.phase === 'incoming' && detail === SuspendedDetail.Paused) {
          // A migration with VIR_MIGRATE_PAUSED ends with the guest paused here.
          await this.lifecycle.toRunning(entry, eventName(event, detail));
        }
        return;
      case DomainEvent.Resumed:
        if (!entry) return;
        if (detail === ResumedDetail.Postcopy) {
          logger.notice(`domain ${entry.name} runs post-copy; its LVs stay shared until the source stops`);
          return;
        }
        if (detail === ResumedDetail.PostcopyFailed) {
          logger.error(
            `domain ${entry.name}: post-copy migration failed; its LVs stay shared on both hosts. Recover the migration (virsh migrate --postcopy-resume), or destroy the paused source side: the destination then takes its exclusive locks by itself`,
          );
          return;
        }
        // Resumed/Migrated: the destination after success, or the source after a migration that
        // failed past the switchover. Either way the guest runs here and needs its own modes.
        if (isMigrating(entry.phase)) await this.lifecycle.toRunning(entry, eventName(event, detail));
        return;
      case DomainEvent.Stopped:
        this.reconciler.noteChanged(uuid);
        if (!entry) return;
        if (entry.phase === 'starting') {
          // A start in progress cannot have stopped: this is the previous run's late event, and
          // its locks went with that run's release hook.
          logger.info(`ignoring ${eventName(event, detail)} of ${entry.name}: it belongs to the run before the current start`);
          return;
        }
        await this.lifecycle.releaseDomain(entry, `stopped (${eventName(event, detail)})`);
        return;
      default:
        return;
    }
  }

  /**
   * Device aliases exist only in the live XML, which the start hook never sees: read it once QEMU
   * runs, outside the domain's queue, so a later hot-unplug can be mapped to its LVs.
   */
  private refreshAliasesSoon(uuid: string): void {
    const { deps, queue, table, logger } = this.ctx;
    void (async () => {
      const disks = await parseDomainXmlAsync(await deps.libvirt.domainXml(uuid));
      const resolved = await deps.resolver.resolve(disks.name, disks.disks);
      await queue.run(uuid, async () => {
        const entry = table.domains.get(uuid);
        if (entry) entry.aliases = resolved.aliases;
      });
    })().catch((err: unknown) => logger.debug(`cannot read the live XML of ${uuid} for its device aliases: ${(err as Error).message}`));
  }

  /** A hot-plugged disk: take its LVs (the admin activated them before AttachDevice; no hook runs). */
  async onDeviceAdded(uuid: string, alias: string): Promise<void> {
    const { deps, queue, table, logger } = this.ctx;
    this.reconciler.noteChanged(uuid);
    // Read outside the domain's queue: a libvirt call must never hold it.
    const disks = await parseDomainXmlAsync(await deps.libvirt.domainXml(uuid));
    const resolved = await deps.resolver.resolve(disks.name, disks.disks);
    for (const e of resolved.errors) logger.error(`domain ${disks.name}: device ${alias} added: ${e}`);
    await queue.run(uuid, async () => {
      const entry = table.domains.get(uuid);
      if (!entry) {
        this.reconciler.soon(`device ${alias} added to a domain not in the table`);
        return;
      }
      for (const [a, lvs] of resolved.aliases) entry.aliases.set(a, lvs);
      const added = new Map<string, LockMode>();
      for (const [lv, mode] of resolved.wanted) if (!entry.own.has(lv)) added.set(lv, isMigrating(entry.phase) ? 'sh' : mode);
      if (added.size === 0) return;
      for (const c of localConflicts(table, uuid, added)) {
        logger.error(`domain ${entry.name}: hot-plugged ${c.lv} ${c.reason}; the disk is in use WITHOUT its lock`);
        added.delete(c.lv);
      }
      for (const [lv, mode] of added) {
        entry.wanted.set(lv, mode);
        entry.own.set(lv, resolved.wanted.get(lv) ?? mode);
      }
      const failures = await this.transitions.apply(entry, added, `device ${alias} added`);
      for (const f of failures) logger.error(`domain ${entry.name}: hot-plugged ${describeFailure(f)}; the disk is in use WITHOUT its lock`);
    });
  }

  async onDeviceRemoved(uuid: string, alias: string): Promise<void> {
    const { queue, table } = this.ctx;
    this.reconciler.noteChanged(uuid);
    await queue.run(uuid, async () => {
      const entry = table.domains.get(uuid);
      const lvs = entry?.aliases.get(alias);
      if (!entry || !lvs) {
        // Aliases are known once the live XML was read; until then reconcile finds the unused LV.
        if (entry) this.reconciler.soon(`device ${alias} removed from ${entry.name}`);
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
        await this.transitions.apply(entry, targets, `device ${alias} removed`, (lv) => (table.usersOf(lv).length === 0 ? 'off' : undefined));
      }
    });
  }
}
