import type { PeerHost } from '../config/types.js';
import type { Exec, RunResult } from '../lvm/run.js';
import type { HoldingReply } from '../peers/client.js';
import { lockArgsCommand, parseLockArgsReport, type LeaseLocation } from './lease-args.js';
import { budgetText, type Holder, type HolderReport } from './report.js';
import { clientReadCommand, leaseResource, parseClientRead, type LeaseOwner } from './sanlock-read.js';

/** A refusal waits for the lookup at most this long (issue: "must not delay the refusal by more than 1 s"). */
export const HOLDER_BUDGET_MS = 1000;

export interface HolderLookupDeps {
  run: Exec;
  /** The lvm binary (lvm.command). */
  lvm: () => string;
  /** The sanlock binary. */
  sanlock: string;
  /** The configured peers, with their host_ids. */
  hosts: () => readonly PeerHost[];
  /** The `holding` query over the peer channel; absent without peers. */
  holding?: (peer: PeerHost, lvs: string[], timeoutMs: number) => Promise<HoldingReply>;
  /** Monotonic milliseconds; injected by tests. */
  now?: () => number;
}

/** A source that could not answer: its text goes into the refusal as what is unknown. */
class Gap extends Error {}

function firstLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).find((l) => l.length > 0 && !/^WARNING:/i.test(l)) ?? '';
}

/**
 * Finds who holds an LV that lvm refused, in the order of the sources: the host_id lvm printed
 * (lvm >= 2.03.33), else the lease owners sanlock reads from disk (lvs gives the lease's place);
 * then the peer with that host_id, then what that peer's daemon runs with the LV. Each step runs
 * within what is left of one budget; nothing here throws, a missing source is reported as such.
 */
export class HolderLookup {
  private readonly now: () => number;

  constructor(private readonly deps: HolderLookupDeps) {
    this.now = deps.now ?? (() => performance.now());
  }

  /** Everything known about the holders of `vg/lv`, within `budgetMs`. */
  async lookup(vg: string, lv: string, hostId: number | undefined, budgetMs = HOLDER_BUDGET_MS): Promise<HolderReport> {
    const deadline = this.now() + budgetMs;
    const found = await this.holdersOf(vg, lv, hostId, deadline, budgetMs);
    if ('unknown' in found) return found;
    await Promise.all(found.holders.map((h) => this.askPeer(h, `${vg}/${lv}`, deadline, budgetMs)));
    return found;
  }

  /** The holders' host_ids and modes only, without asking any peer: for the migration handoff. */
  async owners(vg: string, lv: string, hostId: number | undefined, budgetMs = HOLDER_BUDGET_MS): Promise<HolderReport> {
    return this.holdersOf(vg, lv, hostId, this.now() + budgetMs, budgetMs);
  }

  private async holdersOf(vg: string, lv: string, hostId: number | undefined, deadline: number, budgetMs: number): Promise<HolderReport> {
    const key = `${vg}/${lv}`;
    const withPeers = (owners: { hostId: number; mode?: 'ex' | 'sh' }[]): HolderReport => ({
      lv: key,
      holders: owners.map((o): Holder => {
        const peer = this.deps.hosts().find((h) => h.hostId === o.hostId);
        const holder: Holder = { hostId: o.hostId };
        if (o.mode) holder.mode = o.mode;
        if (peer) holder.peer = peer.name;
        return holder;
      }),
    });
    if (hostId !== undefined) return withPeers([{ hostId }]);
    try {
      const location = await this.location(vg, lv, deadline, budgetMs);
      const owners = await this.leaseOwners(location, deadline, budgetMs);
      if (owners.length === 0) return { lv: key, holders: [], free: true, unknown: 'sanlock reports no owner of its lease now (the lock may have been released since)' };
      return withPeers(owners);
    } catch (err) {
      if (err instanceof Gap) return { lv: key, holders: [], unknown: err.message };
      return { lv: key, holders: [], unknown: `lookup failed: ${(err as Error).message}` };
    }
  }

  /** Runs a command within what is left of the budget; a late one is killed by the runner's timeout. */
  private async runWithin(what: string, file: string, args: string[], deadline: number, budgetMs: number): Promise<RunResult> {
    const left = Math.floor(deadline - this.now());
    if (left <= 0) throw new Gap(`timed out: no time left for ${what} within ${budgetText(budgetMs)}`);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), left);
    });
    // The race: the runner resolves only once the killed process is gone, which may take longer.
    const run = await Promise.race([this.deps.run(file, args, { timeoutMs: left }), late]).finally(() => clearTimeout(timer));
    if (!run || run.timedOut) throw new Gap(`timed out: ${what} gave no answer within ${budgetText(budgetMs)}`);
    return run;
  }

  private async location(vg: string, lv: string, deadline: number, budgetMs: number): Promise<LeaseLocation> {
    const run = await this.runWithin('lvs', this.deps.lvm(), lockArgsCommand(vg, lv), deadline, budgetMs);
    if (run.rc !== 0) {
      const why = run.rc === null ? firstLine(run.stderr) || (run.signal ? `killed by ${run.signal}` : 'did not run') : `exit code ${run.rc}: ${firstLine(run.stderr) || 'no error message'}`;
      throw new Gap(`lvs failed: ${why}`);
    }
    try {
      return parseLockArgsReport(run.stdout, vg, lv);
    } catch (err) {
      throw new Gap(`no lease location: ${(err as Error).message}`);
    }
  }

  private async leaseOwners(at: LeaseLocation, deadline: number, budgetMs: number): Promise<LeaseOwner[]> {
    const args = clientReadCommand(leaseResource(at.vg, at.uuid, at.offset));
    const run = await this.runWithin('sanlock client read', this.deps.sanlock, args, deadline, budgetMs);
    if (run.rc === null) throw new Gap(`sanlock client read failed: ${firstLine(run.stderr) || (run.signal ? `killed by ${run.signal}` : 'did not run')}`);
    try {
      return parseClientRead(run.stdout, run.rc);
    } catch (err) {
      throw new Gap(`sanlock client read failed: ${(err as Error).message}`);
    }
  }

  /** Fills in what the holder's daemon runs with the LV, or why that is unknown. */
  private async askPeer(holder: Holder, lv: string, deadline: number, budgetMs: number): Promise<void> {
    const peer = this.deps.hosts().find((h) => h.name === holder.peer);
    if (!peer) return;
    if (!this.deps.holding) {
      holder.domainUnknown = `no peer channel to ask ${peer.name}`;
      return;
    }
    const left = Math.floor(deadline - this.now());
    if (left <= 0) {
      holder.domainUnknown = `no time left to ask ${peer.name} within ${budgetText(budgetMs)}`;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), left);
    });
    const reply = await Promise.race([this.deps.holding(peer, [lv], left).catch((err: unknown): HoldingReply => ({ peer: peer.name, ok: false, error: (err as Error).message })), late]).finally(() => clearTimeout(timer));
    if (!reply || reply.timedOut) holder.domainUnknown = `${peer.name} did not answer within ${budgetText(budgetMs)}`;
    else if (!reply.ok) holder.domainUnknown = `${peer.name} could not be asked: ${reply.error ?? 'no reason given'}`;
    else holder.rows = reply.rows ?? [];
  }
}
