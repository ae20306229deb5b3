/**
 * Whether the hosts of a sanlock lockspace still renew their delta leases, and when the leases of
 * one that stopped become free. Pure: parsers of sanlock's own output and sanlock's rule.
 *
 * `sanlock client host_status -s LOCKSPACE -D` prints, per host it has seen (sanlock 3.8
 * client_cmd.c status_host and print_debug, cmd.c print_state_host):
 *   1 timestamp 407
 *       last_check=535
 *       last_live=412
 *       ...
 *       io_timeout=10
 *       owner_name=hvA
 * `last_check` and `last_live` are in the monotonic seconds of the sanlock daemon that prints
 * them (when it last read that host's lease, and when it last saw the timestamp change);
 * `sanlock client status -D` gives that daemon's current `monotime=` (cmd.c print_state_daemon).
 */

/** sanlock's default watchdog_fire_timeout (sanlock_internal.h DEFAULT_WATCHDOG_FIRE_TIMEOUT). */
export const WATCHDOG_FIRE_SECONDS = 60;

export interface HostRecord {
  hostId: number;
  /** The host's delta-lease timestamp on disk; 0 when its host_id is free. */
  timestamp: number;
  lastCheck: number;
  lastLive: number;
  ownerId: number;
  ownerGeneration: number;
  ioTimeout: number;
  ownerName: string;
}

/** The sanlock arguments that print a lockspace's host records. lvmlockd names a VG's lvm_<vg>. */
export function hostStatusCommand(vg: string): string[] {
  return ['client', 'host_status', '-s', `lvm_${vg}`, '-D'];
}

/** The sanlock arguments that print the daemon's state, with its `monotime=`. */
export function daemonStatusCommand(): string[] {
  return ['client', 'status', '-D'];
}

const NUMBER_FIELDS: Record<string, keyof HostRecord> = {
  last_check: 'lastCheck',
  last_live: 'lastLive',
  owner_id: 'ownerId',
  owner_generation: 'ownerGeneration',
  timestamp: 'timestamp',
  io_timeout: 'ioTimeout',
};

/**
 * The host records of `host_status -D` output; throws naming what is wrong. Lines that belong to
 * neither form are skipped, so the output may sit among other text (as in a captured session).
 */
export function parseHostStatus(stdout: string): HostRecord[] {
  const hosts: HostRecord[] = [];
  let current: (Partial<HostRecord> & { hostId: number; seen: Set<string> }) | undefined;
  const finish = (): void => {
    if (!current) return;
    for (const key of ['last_live', 'io_timeout'] as const) {
      if (!current.seen.has(key)) throw new Error(`host ${current.hostId} has no ${key} field (was -D given?)`);
    }
    const { seen: _seen, ...fields } = current;
    hosts.push({ timestamp: 0, lastCheck: 0, ownerId: 0, ownerGeneration: 0, ownerName: '', lastLive: 0, ioTimeout: 0, ...fields });
    current = undefined;
  };
  for (const raw of stdout.split('\n')) {
    const head = /^(\d+) timestamp (\d+)$/.exec(raw.trim());
    if (head && !/^\s/.test(raw)) {
      finish();
      current = { hostId: Number(head[1]), timestamp: Number(head[2]), seen: new Set() };
      continue;
    }
    const field = /^\s+([a-z_]+)=(.*)$/.exec(raw);
    if (field && current) {
      const [, key, value] = field as unknown as [string, string, string];
      current.seen.add(key);
      if (key === 'owner_name') current.ownerName = value.trim();
      else if (NUMBER_FIELDS[key]) {
        if (!/^\d+$/.test(value.trim())) throw new Error(`host ${current.hostId}: ${key}=${JSON.stringify(value)} is not a number`);
        (current as Record<string, unknown>)[NUMBER_FIELDS[key]] = Number(value);
      }
      continue;
    }
    finish();
  }
  finish();
  return hosts;
}

/**
 * The daemon's watchdog_fire_timeout from `sanlock client status -D`, which newer sanlock
 * prints (cmd.c print_state_daemon) and 3.8.5 as packaged in Debian 12 does not: undefined then,
 * and the fixed default applies. It is this daemon's own setting that its paxos acquire uses.
 */
export function parseWatchdogFireTimeout(stdout: string): number | undefined {
  const m = /^\s*watchdog_fire_timeout=(\d+)\s*$/m.exec(stdout);
  return m ? Number(m[1]) : undefined;
}

/** The daemon's monotonic seconds from `sanlock client status -D`; throws when there is none. */
export function parseMonotime(stdout: string): number {
  const m = /^\s*monotime=(\d+)\s*$/m.exec(stdout);
  if (!m) throw new Error('no monotime= line in the output of sanlock client status -D');
  return Number(m[1]);
}

/**
 * FREE: the host_id is not in use. LIVE: renewed within 8 x io_timeout. FAIL: stopped renewing,
 * but its watchdog may not have fired yet. DEAD: silent longer than 8 x io_timeout + the watchdog
 * fire timeout, so its watchdog has reset it. UNKNOWN: never seen renewing.
 * (sanlock.h SANLK_HOST_*; sanlock's UNKNOWN also covers a host seen only once, which these
 * fields cannot tell from LIVE: such a host counts as LIVE here, so nobody waits for it.)
 */
export type HostState = 'FREE' | 'LIVE' | 'FAIL' | 'DEAD' | 'UNKNOWN';

export interface Liveness {
  state: HostState;
  /** Seconds since sanlock last saw the host renew (now - last_live). */
  silentFor?: number;
  /**
   * When sanlock lets another host take this host's leases, in sanlock monotonic seconds:
   * last_live + 8 x io_timeout + watchdog fire timeout. Only for FAIL and DEAD.
   */
  freeAt?: number;
}

/**
 * sanlock's rule for another host, applied to its record at the daemon's `now` (monotime).
 * - lockspace.c get_host_flag (sanlock 3.8, lines 1487-1531): LIVE while now - last_live <=
 *   calc_id_renewal_fail_seconds(io), DEAD once now - last_live > calc_host_dead_seconds(io),
 *   FAIL in between; FREE when the timestamp is 0.
 * - timeouts.c (lines 69-84): calc_id_renewal_fail_seconds(io) = 8 * io;
 *   calc_host_dead_seconds(io) = 8 * io + watchdog_fire_timeout, io being that host's io_timeout.
 * - paxos_lease.c paxos_lease_acquire (lines 1792-1800, 1916-1938): a lease whose owner stopped
 *   renewing is taken once now - last_live > calc_host_dead_seconds(owner's io_timeout), with
 *   last_live from this same host_status record. Hence freeAt = last_live + 8 * io + 60.
 * Pure.
 */
export function hostLiveness(host: HostRecord, now: number, watchdogFireSeconds = WATCHDOG_FIRE_SECONDS): Liveness {
  if (host.timestamp === 0) return { state: 'FREE' };
  if (host.lastLive === 0) return { state: 'UNKNOWN' };
  const silentFor = Math.max(0, now - host.lastLive);
  const failAfter = 8 * host.ioTimeout;
  const deadAfter = failAfter + watchdogFireSeconds;
  if (silentFor <= failAfter) return { state: 'LIVE', silentFor };
  const freeAt = host.lastLive + deadAfter;
  return { state: silentFor > deadAfter ? 'DEAD' : 'FAIL', silentFor, freeAt };
}
