import { HOOK_OPS } from '../config/types.js';
import { DomainXmlError, type DomainDisks } from '../domain/disks.js';
import { parseDomainXmlAsync } from '../domain/parse-async.js';
import type { ResolvedDisks } from '../domain/resolver.js';
import { DomainState } from '../libvirt/enums.js';
import type { LockMode, TargetMode } from '../locks/lv.js';
import type { DomainEntry, Phase } from '../locks/table.js';
import { describeFailure, type LvFailure } from '../lvm/errors.js';
import { describeRefused } from '../holders/engine.js';
import { type EngineContext, HookRefusal } from './context.js';
import { deadWaitDeps, waitForDeadHolders } from './dead-holder.js';
import type { Handoff } from './handoff.js';
import type { Lifecycle } from './lifecycle.js';
import type { PeerNotices } from './notices.js';
import { type Action, type HookOp, decideHook, localConflicts, modesFor } from './policy.js';
import type { Reconciler } from './reconcile.js';
import type { Transitions } from './transitions.js';

export interface HookRequest {
  name: string;
  op: string;
  subop: string;
  extra: string;
  xml: string;
}

/** How long a start may wait for its Started event before a reconcile asks libvirt. */
const START_EVENT_MS = 10_000;

/** A `prepare` this soon after the `migrate` hook is libvirt going on with the migration (tens of ms). */
const PROMPT_PREPARE_MS = 250;

/** The share of the hook's wait the daemon may use; the rest covers the hook's own process and bus. */
const HOOK_DEADLINE_SHARE = 0.9;

/**
 * Answers libvirt's qemu hook. libvirt holds the domain while a gating hook waits, so nothing here
 * calls libvirt about that domain before answering: everything comes from the hook's XML and the
 * table. Only `release end`, which nobody waits for, asks libvirt.
 */
export class HookGateway {
  constructor(
    private readonly ctx: EngineContext,
    private readonly transitions: Transitions,
    private readonly lifecycle: Lifecycle,
    private readonly handoff: Handoff,
    private readonly notices: PeerNotices,
    private readonly reconciler: Reconciler,
  ) {}

  /** Answers a hook call; throws HookRefusal with a one-line reason to fail it. Timed for the metrics. */
  async hook(req: HookRequest): Promise<string> {
    const { clock, metrics } = this.ctx;
    const started = clock.now();
    try {
      const answer = await this.answer(req);
      metrics.hookAnswered(req.op, 'allowed', clock.now() - started);
      return answer;
    } catch (err) {
      metrics.hookAnswered(req.op, err instanceof HookRefusal ? 'refused' : 'error', clock.now() - started);
      throw err;
    }
  }

  private async answer(req: HookRequest): Promise<string> {
    if (!(HOOK_OPS as readonly string[]).includes(req.op)) return `unknown hook op ${req.op}: nothing to do`;
    const op = req.op as HookOp;
    if (op === 'reconnect') {
      // libvirtd restarted: libvirt-dbus renews its event subscriptions only at its next call,
      // and events in the gap are lost; a reconcile calls it and covers the gap.
      this.reconciler.soon(`libvirtd reconnected to ${req.name || 'a domain'} after a restart`);
      return 'reconnect: reconciling soon';
    }
    const { clock, table, queue, deps } = this.ctx;
    const deadline = clock.now() + deps.hookTimeoutMs() * HOOK_DEADLINE_SHARE;
    let disks: DomainDisks;
    try {
      disks = await parseDomainXmlAsync(req.xml);
    } catch (err) {
      const why = err instanceof DomainXmlError ? err.message : String(err as Error);
      throw new HookRefusal(`cannot read the domain XML of ${req.name || 'an unnamed domain'} for ${op}: ${why}`);
    }
    if (op === 'release' && req.subop === 'end') return this.releaseForHook(disks);
    const actions = deps.actions();
    // A cheap first look, so ops with nothing to do never wait behind the domain's queue.
    if (decideHook(op, req.subop, table.domains.get(disks.uuid), actions).kind === 'allow' && op !== 'prepare' && op !== 'migrate') {
      return `${op} ${req.subop}: nothing to do`;
    }
    if (!this.reconciler.ready) {
      // The daemon owns its bus name only after its first reconcile; a caller that got here
      // earlier would be answered from a table that does not yet know what runs on this host.
      throw new HookRefusal(`${op} of domain ${disks.name} refused: the daemon is still starting and does not yet know which locks this host holds`);
    }
    const resolved = await deps.resolver.resolve(disks.name, disks.disks);
    return queue.run(disks.uuid, async () => {
      const entry = table.domains.get(disks.uuid);
      const decision = decideHook(op, req.subop, entry, actions);
      if (decision.kind === 'allow') return decision.note;
      if (decision.kind === 'refuse') throw new HookRefusal(`${op} of domain ${disks.name} refused: ${decision.reason}`);
      if (decision.kind === 'confirm-incoming') {
        if (await this.isLiveIncoming(entry!, deadline)) return this.confirmIncoming(entry!);
        // Not the incoming migration: an offline one, or one libvirt abandoned, whose end went
        // unseen. Its sh goes back, and this prepare is a fresh start like any other.
        await this.lifecycle.releaseDomain(entry!, 'incoming migration not carried out: a new start came');
        return this.startFresh(disks, op, resolved, actions, deadline);
      }
      return this.lockFor(disks, op, resolved, decision, deadline);
    });
  }

  private startFresh(disks: DomainDisks, op: HookOp, resolved: ResolvedDisks, actions: Record<HookOp, Action>, deadline: number): Promise<string> {
    const decision = decideHook(op, 'begin', undefined, actions);
    if (decision.kind !== 'lock') return Promise.resolve(`${op}: nothing to do`);
    return this.lockFor(disks, op, resolved, decision, deadline);
  }

  private async lockFor(
    disks: DomainDisks,
    op: HookOp,
    resolved: ResolvedDisks,
    decision: { modes: 'own' | 'shared'; phase: Phase },
    deadline: number,
  ): Promise<string> {
    const { clock, table } = this.ctx;
    if (resolved.errors.length > 0) {
      throw new HookRefusal(`${op} of domain ${disks.name}: cannot tell which LVs to lock: ${resolved.errors.join('; ')}`);
    }
    if (resolved.wanted.size === 0) return `domain ${disks.name} uses no managed LV`;
    if (clock.now() > deadline) throw new HookRefusal(`${op} of domain ${disks.name}: the daemon was too busy to answer in time; nothing was locked`);
    if (decision.phase === 'incoming') {
      // lvmlockd would turn a local ex into sh in place: whatever holds it here would lose it.
      const exHere = [...resolved.wanted.keys()].filter((lv) => table.held.get(lv)?.mode === 'ex');
      if (exHere.length > 0) {
        throw new HookRefusal(`${op} of domain ${disks.name} refused: ${exHere.join(', ')} already held exclusively on this host (a running domain or an admin's activation)`);
      }
    }
    return this.take(disks, op, resolved, modesFor(resolved.wanted, decision.modes), decision.phase, deadline);
  }

  /**
   * libvirt runs `prepare` right after `migrate` for a live incoming migration; the hooks cannot
   * tell it from a `virsh start` after an offline or abandoned migration whose end we did not see.
   * A prepare that comes at once is the migration's; a later one is believed only if the source
   * says its outgoing migration still runs.
   */
  private async isLiveIncoming(entry: DomainEntry, deadline: number): Promise<boolean> {
    const waited = this.ctx.clock.now() - (entry.announcedAt ?? entry.since);
    if (waited <= PROMPT_PREPARE_MS || !entry.peer) return true;
    const answer = await this.handoff.sourceStillMigrating(entry, deadline);
    if (!answer.yes) this.ctx.logger.warning(`domain ${entry.name}: a prepare ${waited} ms after its migrate hook, and the source does not confirm the migration (${answer.said}): treated as a new start`);
    return answer.yes;
  }

  /** libvirt went on from `migrate` to `prepare`: the incoming migration is real. */
  private confirmIncoming(entry: DomainEntry): string {
    this.lifecycle.cancelTimer(entry.uuid, 'incoming');
    entry.incoming = 'prepared';
    entry.since = this.ctx.clock.now();
    return `domain ${entry.name}: prepare of the incoming migration keeps the shared locks`;
  }

  /**
   * An incoming that libvirt does not carry on with within the window (an offline migration, or
   * one that failed before QEMU: no event and no `release end` follow) gives its sh back, and the
   * source, told so, takes its ex back.
   */
  /**
   * A start's Started event can be lost (libvirt-dbus renews its subscriptions only at its next
   * call after a libvirtd restart; seen on the cluster bed): a start still waiting for it after
   * START_EVENT_MS is settled by a reconcile, which asks libvirt whether it runs. Until then a
   * peer's demote request for it would be refused.
   */
  private watchStart(entry: DomainEntry): void {
    this.lifecycle.setTimer(entry.uuid, 'start', START_EVENT_MS, () => {
      if (this.ctx.table.domains.get(entry.uuid) !== entry || entry.phase !== 'starting') return;
      this.reconciler.soon(`no Started event for ${entry.name} ${START_EVENT_MS / 1000} s after its start`);
    });
  }

  private watchIncoming(entry: DomainEntry): void {
    const { queue, table, logger, incomingPrepareWindowMs } = this.ctx;
    entry.announcedAt = this.ctx.clock.now();
    this.lifecycle.setTimer(entry.uuid, 'incoming', incomingPrepareWindowMs, () => {
      void queue
        .run(entry.uuid, async () => {
          if (table.domains.get(entry.uuid) !== entry || entry.phase !== 'incoming' || entry.incoming !== 'announced') return;
          logger.warning(
            `domain ${entry.name}: no prepare followed its incoming migration within ${incomingPrepareWindowMs} ms (an offline migration, or one libvirt abandoned); giving back its shared locks`,
          );
          await this.lifecycle.releaseDomain(entry, 'incoming migration abandoned');
        })
        .catch((err: unknown) => logger.error(`ending the abandoned incoming migration of ${entry.name} failed: ${(err as Error).message}`));
    });
  }

  private async take(
    disks: DomainDisks,
    op: HookOp,
    resolved: ResolvedDisks,
    modes: Map<string, LockMode>,
    phase: Phase,
    deadline: number,
  ): Promise<string> {
    const { table, clock, logger, deps } = this.ctx;
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
      since: clock.now(),
      wanted: new Map(modes),
      own: new Map(resolved.wanted),
      aliases: resolved.aliases,
      incoming: phase === 'incoming' ? 'announced' : undefined,
    };
    if (previous) this.lifecycle.cancelAll(disks.uuid);
    table.domains.set(disks.uuid, entry);

    // An incoming migration takes sh through the handoff, which asks the holder to demote first.
    const taken =
      op === 'migrate' ? await this.handoff.takeShared(entry, modes, deadline) : { failures: await this.transitions.apply(entry, modes, `hook ${op}`), peersSaid: '' };
    // A fresh start refused only by holders that stopped renewing may wait for their leases to expire.
    const retry = (): Promise<LvFailure[]> => {
      // The start begins again now: a reconcile during the wait must not count it as gone.
      entry.since = clock.now();
      return this.transitions.apply(entry, modes, `hook ${op}, after the holders' leases expired`);
    };
    const { failures, note } =
      op === 'prepare' && phase === 'starting' ? await waitForDeadHolders(deadWaitDeps(this.ctx), `${op} of domain ${disks.name}`, taken.failures, deadline, retry) : { ...taken, note: '' };
    const peersSaid = taken.peersSaid + note;
    const late = clock.now() > deadline;
    if (failures.length === 0 && !late) {
      if (phase === 'incoming') this.watchIncoming(entry);
      if (phase === 'starting') this.watchStart(entry);
      return `domain ${disks.name}: ${[...modes].map(([lv, m]) => `${lv} ${m}`).join(', ')}`;
    }

    // Who holds the refused LVs is looked up while the rollback runs (at most 1 s, within the deadline).
    const reasons = describeRefused(deps.holders, failures, deadline - clock.now());
    // Fail closed without leaking: give back what this call took and nobody else here holds.
    if (previous) table.domains.set(disks.uuid, previous);
    else table.domains.delete(disks.uuid);
    const rollback = new Map<string, TargetMode>([...modes.keys()].filter((lv) => !heldBefore.has(lv)).map((lv) => [lv, 'off']));
    if (rollback.size > 0) {
      const rollbackFailures = await this.transitions.apply(entry, rollback, `rollback of failed ${op}`, (lv) =>
        table.usersOf(lv).length === 0 ? 'off' : undefined,
      );
      for (const f of rollbackFailures) logger.error(`rollback after failed ${op} of ${disks.name}: ${describeFailure(f)}`);
    }
    if (op === 'migrate' && entry.peer) this.notices.send(entry, 'migration-failed', [...modes.keys()]);
    if (failures.length === 0) {
      throw new HookRefusal(`${op} of domain ${disks.name}: the locks were granted only after the hook's time ran out, so they were given back`);
    }
    throw new HookRefusal(`${op} of domain ${disks.name} refused: ${(await reasons).join('; ')}${peersSaid}`);
  }

  /**
   * libvirt runs `release end` when a domain's QEMU is gone, also after a start or an incoming
   * migration failed before any event: the only signal that those locks are free to go. Nobody
   * waits for this hook, so libvirt can be asked first whether the domain really is gone here.
   */
  private async releaseForHook(disks: DomainDisks): Promise<string> {
    const { table, queue, logger, deps } = this.ctx;
    // The run this hook ends: a new start of the same domain while libvirt is asked is not it.
    const ended = table.domains.get(disks.uuid);
    if (!ended) return `domain ${disks.name} holds nothing here`;
    let stillRuns: boolean | undefined;
    try {
      const { state } = await deps.libvirt.domainState(disks.uuid);
      stillRuns = state !== DomainState.Shutoff;
    } catch (err) {
      stillRuns = /not found|no domain/i.test((err as Error).message) ? false : undefined;
    }
    if (stillRuns !== false) {
      const why = stillRuns ? 'libvirt still runs it here' : 'libvirt cannot say whether it still runs here';
      logger.notice(`release end for domain ${disks.name}, but ${why}: keeping its locks; reconcile decides`);
      this.reconciler.soon(`release end of ${disks.name} while ${why}`);
      return `domain ${disks.name}: kept (${why})`;
    }
    return queue.run(disks.uuid, async () => {
      if (table.domains.get(disks.uuid) !== ended) return `domain ${disks.name}: a new run holds its locks now`;
      await this.lifecycle.releaseDomain(ended, 'hook release end');
      return `domain ${disks.name}: released`;
    });
  }
}
