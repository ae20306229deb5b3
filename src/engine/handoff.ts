import { lvKey, parseLvKey, type LockMode, type TargetMode } from '../locks/lv.js';
import type { DomainEntry } from '../locks/table.js';
import { describeFailure, type LvFailure } from '../lvm/errors.js';
import { peersToAsk } from '../holders/refusal.js';
import type { PeerAnswer, PeerMessage, PeerMessageKind } from '../peers/messages.js';
import type { EngineContext, MigrationJob } from './context.js';
import type { Lifecycle } from './lifecycle.js';
import { settleLostStart } from './lost-start.js';
import { currentModes } from './policy.js';
import type { Transitions } from './transitions.js';

/** How long the source waits for libvirt to say which job runs, before and after demoting. */
const FIRST_LOOK_MS = 500;
const SECOND_LOOK_MS = 200;

/**
 * The migration handoff between daemons. Destination: ask the host holding the LVs ex to demote.
 * Source: demote only for a live outgoing migration libvirt is carrying out, take ex back when
 * the migration is gone. Answers to peers name only what the caller sent.
 */
export class Handoff {
  /** Set by the wiring: asks for a reconcile soon. */
  onSourceReleased?: (cause: string) => void;

  constructor(
    private readonly ctx: EngineContext,
    private readonly transitions: Transitions,
    private readonly lifecycle: Lifecycle,
  ) {}

  /**
   * Destination, `migrate` hook: takes sh on the domain's LVs. In a live migration the source
   * holds ex on the LVs the domain owns ex, and sanlock takes about 5.5 s to refuse a sh lock
   * against an ex holder; so the holder is asked to demote before the first lvchange, and the sh
   * is then granted at once. When nobody was asked first (no peers, the LVs free) and sh is still
   * refused by another host, the holder is asked after the refusal.
   */
  async takeShared(entry: DomainEntry, modes: Map<string, LockMode>, hookDeadline: number): Promise<{ failures: LvFailure[]; peersSaid: string }> {
    const { clock, deps, table } = this.ctx;
    const started = clock.now();
    const exOwned = [...modes.keys()].filter((lv) => entry.own.get(lv) === 'ex' && !table.held.has(lv));
    const first = exOwned.length > 0 && (deps.peers?.hosts().length ?? 0) > 0 ? await this.askFirst(entry, exOwned, modes, hookDeadline) : undefined;
    let failures = await this.transitions.apply(entry, modes, first?.demoted ? `hook migrate (after ${first.demoted} demoted)` : 'hook migrate');
    let peersSaid = '';
    if (failures.some((f) => f.cls === 'locked-by-other-host')) {
      const outcome = first?.demoted
        ? await this.retryShared(entry, failures, first.demoted, first.said, hookDeadline)
        : first?.asked
          ? { failures, peersSaid: ` (peers said: ${first.said})` }
          : await this.demoteAtPeers(entry, failures, modes, hookDeadline);
      failures = outcome.failures;
      peersSaid = outcome.peersSaid;
    }
    // A handoff asked after a refusal is counted by demoteAtPeers.
    if (first?.asked) this.ctx.metrics.handoffDone(failures.length === 0 ? 'ok' : 'failed', clock.now() - started);
    return { failures, peersSaid };
  }

  /** Destination, after sh was refused by another host: the handoff below, timed for the metrics. */
  async demoteAtPeers(
    entry: DomainEntry,
    failures: LvFailure[],
    modes: Map<string, LockMode>,
    hookDeadline: number,
  ): Promise<{ failures: LvFailure[]; peersSaid: string }> {
    const started = this.ctx.clock.now();
    const outcome = await this.handOver(entry, failures, modes, hookDeadline);
    this.ctx.metrics.handoffDone(outcome.failures.length === 0 ? 'ok' : 'failed', this.ctx.clock.now() - started);
    return outcome;
  }

  /**
   * Before any lvchange: who holds the LVs the domain owns ex (sanlock's lease owners, within
   * 1 s), and that holder asked to demote. LVs sanlock finds free need nobody; an unknown holder
   * means every peer is asked, as after a refusal.
   */
  private async askFirst(entry: DomainEntry, exOwned: string[], modes: Map<string, LockMode>, hookDeadline: number): Promise<{ asked: boolean; demoted?: string; said: string }> {
    const { clock, deps } = this.ctx;
    const refs = exOwned.map((key) => parseLvKey(key));
    const holders = deps.holders ? await deps.holders.holdersOf(refs, hookDeadline - clock.now()) : { ids: [], unknown: ['no holder lookup'], free: [] };
    if (holders.ids.length === 0 && holders.free.length === refs.length) return { asked: false, said: 'nobody holds the LVs' };
    return this.ask(entry, holders.ids, holders.unknown, modes);
  }

  /** Sends the demote request to the peers that hold the LVs (all, when unknown). */
  private async ask(entry: DomainEntry, holderIds: number[], unknown: string[], modes: Map<string, LockMode>): Promise<{ asked: boolean; demoted?: string; said: string }> {
    const { logger, deps } = this.ctx;
    const link = deps.peers;
    if (!link) return { asked: false, said: 'no peers are configured' };
    const { asked, why } = peersToAsk(link.hosts(), holderIds);
    if (asked.length === 0) return { asked: false, said: `${why}: no peer to ask to demote` };
    logger.info(`domain ${entry.name}: asking ${asked.map((h) => h.name).join(', ')} to demote (${why}${unknown.length ? `; ${unknown.join('; ')}` : ''})`);
    const lvs = [...modes.keys()].sort();
    const replies = await Promise.all(asked.map((peer) => link.send(peer, 'demote', { domain: entry.uuid, lvs })));
    const said = replies.map((r) => `${r.peer}: ${r.ok ? (r.answer?.detail ?? 'demoted') : r.error}`).join('; ');
    const demoted = replies.find((r) => r.ok && r.answer?.result === 'demoted');
    if (!demoted) return { asked: true, said };
    entry.peer = demoted.peer;
    logger.notice(`domain ${entry.name}: ${demoted.peer} demoted its locks for the incoming migration`);
    return { asked: true, demoted: demoted.peer, said };
  }

  /**
   * Destination: sh was refused by another host. Ask the peer that holds the LVs (lvm names its
   * host_id on lvm >= 2.03.33, else sanlock's lease owners do; every peer when the holder is
   * unknown) to demote, then take sh, retrying while sanlock settles, within
   * migration.demote_timeout.
   */
  private async handOver(
    entry: DomainEntry,
    failures: LvFailure[],
    modes: Map<string, LockMode>,
    hookDeadline: number,
  ): Promise<{ failures: LvFailure[]; peersSaid: string }> {
    const { clock, deps } = this.ctx;
    const link = deps.peers;
    if (!link || link.hosts().length === 0) {
      return { failures, peersSaid: ' (no peers are configured to hand the lock over; run "virt-lvmlockctl migrate-out DOMAIN" on the source first)' };
    }
    // Only the holder is asked when lvm or sanlock names it; clusters have dozens of hosts.
    const namedByLvm = [...new Set(failures.map((f) => f.hostId).filter((id): id is number => id !== undefined))];
    const holders = deps.holders ? await deps.holders.holderIds(failures, hookDeadline - clock.now()) : { ids: namedByLvm, unknown: [], free: [] };
    const answer = await this.ask(entry, holders.ids, holders.unknown, modes);
    if (!answer.demoted) return { failures, peersSaid: answer.asked ? ` (peers said: ${answer.said})` : ` (${answer.said})` };
    return this.retryShared(entry, failures, answer.demoted, answer.said, hookDeadline);
  }

  /** After the holder demoted: sh again for what was refused, retried while sanlock settles. */
  private async retryShared(entry: DomainEntry, failures: LvFailure[], peer: string, said: string, hookDeadline: number): Promise<{ failures: LvFailure[]; peersSaid: string }> {
    const { clock, deps } = this.ctx;
    const deadline = Math.min(hookDeadline, clock.now() + deps.migration().demoteTimeoutMs);
    let remaining = failures;
    // The peer answered after its lvchange finished, so the first retry goes at once.
    let delay = 0;
    while (remaining.length > 0 && clock.now() + delay < deadline) {
      if (delay > 0) await clock.sleep(delay);
      delay = Math.min(Math.max(delay * 2, 200), 2000);
      // Right after a demotion sanlock can still refuse sh for a moment: retry what failed.
      const retry = new Map<string, TargetMode>(remaining.filter((f) => f.lv).map((f) => [lvKey(f.lv!), 'sh']));
      remaining = await this.transitions.apply(entry, retry, `hook migrate (after ${peer} demoted)`);
    }
    return { failures: remaining, peersSaid: remaining.length ? ` (peers said: ${said}; sh still refused after ${deps.migration().demoteTimeoutMs} ms)` : '' };
  }

  /**
   * Destination: whether the source of an incoming migration still runs it, asked when the
   * `prepare` that confirms it may not belong to it (late, or events may have been lost).
   */
  async sourceStillMigrating(entry: DomainEntry, deadline: number): Promise<{ yes: boolean; said: string }> {
    const link = this.ctx.deps.peers;
    const peer = entry.peer ? link?.hosts().find((h) => h.name === entry.peer) : undefined;
    if (!link || !peer) return { yes: false, said: 'no peer to ask' };
    const reply = await Promise.race([
      link.send(peer, 'migrating', { domain: entry.uuid, lvs: [...entry.wanted.keys()].sort() }),
      this.ctx.clock.sleep(Math.max(0, deadline - this.ctx.clock.now())).then(() => undefined),
    ]);
    if (!reply) return { yes: false, said: `${peer.name}: no answer in time` };
    return { yes: reply.ok && reply.answer?.result === 'migrating', said: `${peer.name}: ${reply.answer?.detail ?? reply.error ?? 'no answer'}` };
  }

  /** The job libvirt runs on a domain; asked outside the domain's queue, never while it answers a hook. */
  async migrationJob(uuid: string, waitMs?: number): Promise<MigrationJob | 'unknown'> {
    const { libvirt } = this.ctx.deps;
    try {
      if (libvirt.migrationJob) return await libvirt.migrationJob(uuid, waitMs);
      return (await libvirt.jobActive(uuid)) ? 'other' : 'none';
    } catch (err) {
      this.ctx.logger.info(`cannot tell which job runs on domain ${uuid}: ${(err as Error).message}`);
      return 'unknown';
    }
  }

  /** Source side of the peer messages. */
  async onPeerMessage(kind: PeerMessageKind, msg: PeerMessage, peer: string): Promise<PeerAnswer> {
    // Only a live outgoing migration may demote: libvirt is asked first, outside the queue.
    const job = kind === 'demote' || kind === 'migrating' ? await this.migrationJob(msg.domain, FIRST_LOOK_MS) : undefined;
    if (kind === 'migrating') {
      // Answered from libvirt alone: the caller only needs to know whether it still runs.
      return this.isOutgoing(job)
        ? { result: 'migrating', detail: `domain ${msg.domain}: its outgoing migration runs` }
        : { result: 'refused', detail: `domain ${msg.domain}: no outgoing migration of it runs here` };
    }
    if (kind === 'demote' && this.ctx.table.domains.get(msg.domain)?.phase === 'starting' && this.isOutgoing(job)) await settleLostStart(this.ctx, this.lifecycle, msg.domain);
    const answer = await this.answer(kind, msg, peer, job);
    if (kind !== 'demote' || answer.result !== 'demoted' || !this.isOutgoing(job)) return answer;
    // The migration may have ended between that look and the demotion: look again, and undo.
    if (this.isOutgoing(await this.migrationJob(msg.domain, SECOND_LOOK_MS))) return answer;
    await this.ctx.queue.run(msg.domain, async () => {
      const entry = this.ctx.table.domains.get(msg.domain);
      if (entry?.phase === 'migrating-out' && !entry.switchedOver && !entry.manualDemote) {
        await this.lifecycle.toRunning(entry, 'its outgoing migration ended while it was demoted');
      }
    });
    return { result: 'refused', detail: `domain ${msg.domain}: its outgoing migration ended; nothing changed` };
  }

  /**
   * A migration job, or a job libvirt does not let us query (it answers GetJobStats only once the
   * destination's Prepare is done, and that waits for our answer): both mean a migration runs.
   * A domain with no job answers at once.
   */
  private isOutgoing(job: MigrationJob | 'unknown' | undefined): boolean {
    return job === 'out' || job === 'busy' || (job === 'other' && !this.ctx.deps.libvirt.migrationJob);
  }

  private answer(kind: Exclude<PeerMessageKind, 'migrating'>, msg: PeerMessage, peer: string, job: MigrationJob | 'unknown' | undefined): Promise<PeerAnswer> {
    return this.ctx.queue.run(msg.domain, async () => {
      const entry = this.ctx.table.domains.get(msg.domain);
      const requested = msg.lvs.join(', ');
      if (!entry || msg.lvs.some((lv) => !entry.wanted.has(lv))) {
        return { result: 'not-held', detail: `domain ${msg.domain} does not hold ${requested} on this host` };
      }
      switch (kind) {
        case 'demote':
          if (entry.phase === 'migrating-out' && entry.manualDemote) return { result: 'demoted', detail: `domain ${msg.domain}: ${requested} already sh (migrate-out)` };
          if (!this.isOutgoing(job)) {
            const why = job === 'unknown' ? 'libvirt cannot tell whether it is migrating' : 'no outgoing migration of it runs here';
            this.ctx.logger.warning(`refused a demote request from ${peer} for domain ${entry.name}: ${why}`);
            return { result: 'refused', detail: `domain ${msg.domain}: ${why}; nothing changed` };
          }
          return this.demote(entry, peer, `demote requested by ${peer}`, false);
        case 'released':
          entry.peer ??= peer;
          if (entry.phase === 'incoming' && entry.incoming === 'prepared') {
            // The source's QEMU is gone, so the migration is over; if the event that says so was
            // lost, libvirt's view settles it (asked by reconcile, outside this queue).
            this.onSourceReleased?.(`${peer} released ${entry.name} while it was incoming here`);
          }
          if (entry.phase !== 'running') return { result: 'noted', detail: `domain ${msg.domain}: noted` };
          this.lifecycle.cancelTimer(entry.uuid, 'retry');
          await this.lifecycle.promote(entry, `${peer} released`);
          return { result: 'promoted', detail: `domain ${msg.domain}: ${entry.lastError ? 'not yet' : 'own modes taken'}` };
        case 'migration-failed':
          if (entry.phase === 'running' && entry.lastError) {
            // Taken for running (a restart, a reconcile) while the other side still held sh.
            this.lifecycle.cancelTimer(entry.uuid, 'retry');
            await this.lifecycle.promote(entry, `migration to ${peer} failed`);
            return { result: 'promoted', detail: `domain ${msg.domain}: ${entry.lastError ? 'not yet' : 'exclusive again'}` };
          }
          if (entry.phase !== 'migrating-out' || entry.switchedOver) return { result: 'noted', detail: `domain ${msg.domain}: noted` };
          await this.lifecycle.toRunning(entry, `migration to ${peer} failed`);
          return { result: 'promoted', detail: `domain ${msg.domain}: ${entry.lastError ? 'not yet' : 'exclusive again'}` };
      }
    });
  }

  async demote(entry: DomainEntry, peer: string | undefined, cause: string, manual: boolean): Promise<PeerAnswer> {
    if (entry.phase !== 'running' && entry.phase !== 'migrating-out') {
      return { result: 'refused', detail: `domain ${entry.uuid} is not running on this host; nothing changed` };
    }
    const before = entry.phase;
    entry.peer = peer;
    entry.switchedOver = false;
    entry.manualDemote = manual;
    this.lifecycle.setPhase(entry, 'migrating-out');
    entry.wanted = currentModes(entry.own, entry.phase);
    const targets = new Map<string, TargetMode>([...entry.wanted].filter(([lv, m]) => this.ctx.table.held.get(lv)?.mode !== m));
    const failures = targets.size ? await this.transitions.apply(entry, targets, cause) : [];
    if (failures.length > 0) {
      this.lifecycle.setPhase(entry, before === 'migrating-out' ? 'running' : before);
      entry.manualDemote = undefined;
      await this.lifecycle.promote(entry, `demotion failed`);
      return { result: 'refused', detail: `domain ${entry.uuid}: ${failures.map(describeFailure).join('; ')}` };
    }
    this.watchDemoted(entry, manual);
    return { result: 'demoted', detail: `domain ${entry.uuid}: ${[...entry.wanted.keys()].join(', ')} sh on ${peer ? 'the source' : 'this host'}` };
  }

  /**
   * A failed migration before the switchover gives the source no event at all, so a demoted
   * source checks on its own: once no migration job runs, it takes its exclusive locks back.
   */
  watchDemoted(entry: DomainEntry, manual: boolean): void {
    const { clock, queue, table, logger, deps } = this.ctx;
    const grace = deps.migration().promoteGraceMs;
    const delay = manual ? Math.max(grace * 12, 120_000) : grace;
    const current = () => table.domains.get(entry.uuid) === entry && entry.phase === 'migrating-out' && !entry.switchedOver;
    this.lifecycle.setTimer(entry.uuid, 'watch', delay, () => {
      void (async () => {
        if (!current()) return;
        // Asked outside the domain's queue: a libvirt call must never hold it. When libvirt
        // cannot tell (a driver without job stats), wait out the longest a destination may still
        // be taking its shared lock; promoting is safe after that, since lvmlockd refuses ex while
        // another host holds sh.
        const m = deps.migration();
        const job = await this.migrationJob(entry.uuid);
        const busy = job === 'unknown' ? clock.now() - entry.since < m.demoteTimeoutMs + m.promoteGraceMs : job !== 'none';
        await queue.run(entry.uuid, async () => {
          if (!current()) return;
          if (busy) {
            this.watchDemoted(entry, false);
            return;
          }
          logger.warning(`domain ${entry.name}: demoted for a migration that is no longer running; taking its own locks back`);
          await this.lifecycle.toRunning(entry, 'no migration job after demotion');
        });
      })().catch((err: unknown) => logger.error(`checking the demoted domain ${entry.name} failed: ${(err as Error).message}`));
    });
  }
}
