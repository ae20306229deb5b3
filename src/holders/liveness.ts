import type { Exec, RunResult } from '../lvm/run.js';
import {
  daemonStatusCommand,
  hostLiveness,
  hostStatusCommand,
  parseHostStatus,
  parseMonotime,
  parseWatchdogFireTimeout,
  type HostRecord,
  type Liveness,
} from './host-status.js';
import { budgetText } from './report.js';

/** What this host's sanlock daemon says of the hosts of one VG's lockspace, at one moment. */
export interface LockspaceView {
  vg: string;
  /** The sanlock daemon's monotonic seconds when it was asked. */
  monotime: number;
  /** sanlock's watchdog fire timeout, when its status says it. */
  watchdogFireSeconds?: number;
  hosts: HostRecord[];
}

/** The view, or why it could not be read. */
export type LockspaceReading = LockspaceView | { vg: string; unknown: string };

/** How one holder stands: sanlock's state, or why that is unknown. */
export type HolderLiveness = (Liveness & { hostId: number }) | { hostId: number; unknown: string };

function firstLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '';
}

function failure(run: RunResult): string {
  if (run.rc === null) return firstLine(run.stderr) || (run.signal ? `killed by ${run.signal}` : 'did not run');
  // sanlock 3.8.5 exits 1 without a word when it cannot reach its daemon.
  return `exit code ${run.rc}: ${firstLine(run.stderr) || firstLine(run.stdout) || 'no error message (is the sanlock daemon running?)'}`;
}

/**
 * Reads host liveness from the local sanlock daemon: `client host_status -D` for the VG's
 * lockspace and `client status -D` for the daemon's clock, run side by side within the caller's
 * budget (the refusal's second). Never throws: a reading that fails says why.
 */
export class LivenessReader {
  constructor(
    private readonly run: Exec,
    private readonly sanlock = 'sanlock',
  ) {}

  async read(vg: string, budgetMs: number): Promise<LockspaceReading> {
    if (budgetMs <= 0) return { vg, unknown: 'no time left to ask sanlock' };
    const [hosts, daemon] = await Promise.all([this.bounded(hostStatusCommand(vg), budgetMs), this.bounded(daemonStatusCommand(), budgetMs)]);
    const what = `sanlock client host_status -s lvm_${vg}`;
    if (typeof hosts === 'string') return { vg, unknown: `${what} ${hosts}` };
    if (typeof daemon === 'string') return { vg, unknown: `sanlock client status ${daemon}` };
    if (hosts.rc !== 0) return { vg, unknown: `${what} failed: ${failure(hosts)}` };
    if (daemon.rc !== 0) return { vg, unknown: `sanlock client status failed: ${failure(daemon)}` };
    try {
      const view: LockspaceView = { vg, monotime: parseMonotime(daemon.stdout), hosts: parseHostStatus(hosts.stdout) };
      const fire = parseWatchdogFireTimeout(daemon.stdout);
      if (fire !== undefined) view.watchdogFireSeconds = fire;
      return view;
    } catch (err) {
      return { vg, unknown: `cannot read sanlock's host status: ${(err as Error).message}` };
    }
  }

  /** The run, or why it gave no answer in time; a late process is killed by the runner's timeout. */
  private async bounded(args: string[], budgetMs: number): Promise<RunResult | string> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), budgetMs);
    });
    const run = await Promise.race([this.run(this.sanlock, args, { timeoutMs: budgetMs }).catch((err: unknown) => (err as Error).message), late]).finally(() =>
      clearTimeout(timer),
    );
    if (run === undefined || (typeof run !== 'string' && run.timedOut)) return `gave no answer within ${budgetText(budgetMs)}`;
    return typeof run === 'string' ? `could not run: ${run}` : run;
  }
}

/** How `hostId` stands in the reading. Pure. */
export function holderLiveness(reading: LockspaceReading, hostId: number): HolderLiveness {
  if ('unknown' in reading) return { hostId, unknown: reading.unknown };
  const record = reading.hosts.find((h) => h.hostId === hostId);
  if (!record) return { hostId, unknown: `sanlock has no record of host_id ${hostId} in lockspace lvm_${reading.vg}` };
  return { hostId, ...hostLiveness(record, reading.monotime, reading.watchdogFireSeconds) };
}

/** The name a holder goes by in messages: its peer's name, else its host_id. */
export function holderName(hostId: number, peer: string | undefined): string {
  return peer ?? `host_id ${hostId}`;
}

/**
 * What the refusal adds about a holder's liveness, e.g. "hv2 has not renewed its lease for 52 s;
 * its locks free at about 12:05:40 (in 88 s)". `wallNow` is the wall clock when sanlock was read;
 * sanlock's monotonic seconds are turned into wall time by their distance from its `monotime`.
 * Pure.
 */
export function livenessText(name: string, live: HolderLiveness, reading: LockspaceReading, wallNow: number, clock: (ms: number, now: number) => string): string {
  if ('unknown' in live) return `liveness of ${name} unknown: ${live.unknown}`;
  switch (live.state) {
    case 'LIVE':
      return `${name} is alive (renewed ${live.silentFor ?? 0} s ago)`;
    case 'FREE':
      return `sanlock shows host_id ${live.hostId} free (${name} has left the lockspace)`;
    case 'UNKNOWN':
      return `sanlock has not yet seen ${name} renew its lease (the lockspace started here only lately)`;
    default: {
      const monotime = 'unknown' in reading ? 0 : reading.monotime;
      const inS = (live.freeAt ?? monotime) - monotime;
      const at = clock(wallNow + inS * 1000, wallNow);
      const when = inS >= 0 ? `its locks free at about ${at} (in ${inS} s)` : `its locks are free to take since about ${at} (${-inS} s ago)`;
      return `${name} has not renewed its lease for ${live.silentFor ?? 0} s; ${when}`;
    }
  }
}
