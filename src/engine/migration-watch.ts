import { DomainState, PausedReason, RunningReason } from '../libvirt/enums.js';
import type { DomainEntry } from '../locks/table.js';
import type { EngineContext } from './context.js';
import type { Handoff } from './handoff.js';
import type { Lifecycle } from './lifecycle.js';
import { isMigrating } from './policy.js';

/** What libvirt says of a listed domain's migration, read outside its queue. */
export type MigrationView = { state: 'migrating' | 'settled' | 'unknown'; direction?: 'incoming' | 'outgoing' };

/**
 * Where a domain's migration stands, from libvirt (state and migration job), and a watch on
 * migrations whose end event may never arrive. libvirt is always asked outside the domain's queue.
 */
export class MigrationWatch {
  /** Set by the wiring: asks for a reconcile soon. */
  requestReconcile: (cause: string) => void = () => undefined;

  constructor(
    private readonly ctx: EngineContext,
    private readonly lifecycle: Lifecycle,
    private readonly handoff: Handoff,
  ) {}

  /**
   * A migration whose end event may never come (libvirt-dbus restarted, the other daemon down):
   * every promote_grace, ask libvirt where it stands, and once the guest runs here with no
   * migration left, take its own modes. Runs until the domain leaves the migration phase.
   */
  watch(entry: DomainEntry): void {
    const { queue, table, logger, deps } = this.ctx;
    const current = () => table.domains.get(entry.uuid) === entry && isMigrating(entry.phase) && !(entry.manualDemote && !entry.switchedOver);
    this.lifecycle.setTimer(entry.uuid, 'settle', deps.migration().promoteGraceMs, () => {
      void (async () => {
        if (!current()) return;
        const listed = (await deps.libvirt.listActiveDomains()).includes(entry.uuid);
        const view = listed ? await this.view(entry.uuid) : undefined;
        if (!listed && entry.seenActive) {
          // Gone from libvirt, and its Stopped event missed: reconcile releases it.
          this.requestReconcile(`domain ${entry.name} was ${entry.phase} and is no longer active`);
          return;
        }
        await queue.run(entry.uuid, async () => {
          if (!current()) return;
          if (view?.state === 'settled') {
            logger.warning(`domain ${entry.name} runs here with no migration job but was ${entry.phase}; taking its own lock modes`);
            await this.lifecycle.toRunning(entry, 'migration over (its end event was missed)');
            return;
          }
          this.watch(entry);
        });
      })().catch((err: unknown) => {
        logger.warning(`checking the migration of ${entry.name} failed: ${(err as Error).message}; trying again`);
        if (current()) this.watch(entry);
      });
    });
  }

  /**
   * Where a listed domain's migration stands. Paused for a migration, running post-copy, or with a
   * migration job: still migrating. Running with no job: settled, whatever the table thought.
   */
  async view(uuid: string): Promise<MigrationView> {
    const { libvirt } = this.ctx.deps;
    try {
      const { state, reason } = await libvirt.domainState(uuid);
      const job = await this.handoff.migrationJob(uuid);
      // A failed post-copy leaves the guest running only on the destination (the source is paused
      // for good): it wants its own modes there, which lvmlockd grants once the source lets go.
      if (state === DomainState.Running && reason === RunningReason.PostcopyFailed) return { state: 'settled' };
      const postcopy =
        (state === DomainState.Running && reason === RunningReason.Postcopy) ||
        (state === DomainState.Paused && (reason === PausedReason.Postcopy || reason === PausedReason.PostcopyFailed));
      if (state === DomainState.Paused && reason === PausedReason.Migration) return { state: 'migrating', direction: job === 'out' ? 'outgoing' : 'incoming' };
      if (postcopy) return { state: 'migrating', direction: job === 'out' || state === DomainState.Paused ? 'outgoing' : 'incoming' };
      if (job === 'out' || job === 'in') return { state: 'migrating', direction: job === 'out' ? 'outgoing' : 'incoming' };
      if (job === 'unknown') return { state: 'unknown' };
      if (job === 'other' && !libvirt.migrationJob) return { state: 'migrating', direction: 'outgoing' };
      return { state: 'settled' };
    } catch {
      // A domain gone meanwhile: nothing to infer.
      return { state: 'unknown' };
    }
  }
}
