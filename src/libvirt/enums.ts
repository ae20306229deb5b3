/** libvirt's domain event and state numbers as libvirt-dbus sends them (libvirt-domain.h). */

export const DomainEvent = {
  Defined: 0,
  Undefined: 1,
  Started: 2,
  Suspended: 3,
  Resumed: 4,
  Stopped: 5,
  Shutdown: 6,
  PMSuspended: 7,
  Crashed: 8,
} as const;

export const StartedDetail = { Booted: 0, Migrated: 1, Restored: 2, FromSnapshot: 3, Wakeup: 4 } as const;
export const SuspendedDetail = { Paused: 0, Migrated: 1, IoError: 2, Postcopy: 7, PostcopyFailed: 8 } as const;
export const ResumedDetail = { Unpaused: 0, Migrated: 1, FromSnapshot: 2, Postcopy: 3, PostcopyFailed: 4 } as const;
export const StoppedDetail = {
  Shutdown: 0,
  Destroyed: 1,
  Crashed: 2,
  Migrated: 3,
  Saved: 4,
  Failed: 5,
  FromSnapshot: 6,
} as const;

export const DomainState = {
  NoState: 0,
  Running: 1,
  Blocked: 2,
  Paused: 3,
  Shutdown: 4,
  Shutoff: 5,
  Crashed: 6,
  PMSuspended: 7,
} as const;

export const PausedReason = { Migration: 2, StartingUp: 11, Postcopy: 12, PostcopyFailed: 13 } as const;
export const RunningReason = { Migrated: 2, MigrationCanceled: 6, Postcopy: 10, PostcopyFailed: 11 } as const;
/** VIR_DOMAIN_JOB_OPERATION values of GetJobStats' "operation" field. */
export const JobOperation = { MigrationIn: 4, MigrationOut: 5 } as const;

/** ListDomains flag: active domains only (running, paused, ...). */
export const ListActive = 1;

const eventNames = ['Defined', 'Undefined', 'Started', 'Suspended', 'Resumed', 'Stopped', 'Shutdown', 'PMSuspended', 'Crashed'];

const detailNames: Record<number, string[]> = {
  0: ['Added', 'Updated', 'Renamed', 'FromSnapshot'],
  1: ['Removed', 'Renamed'],
  2: ['Booted', 'Migrated', 'Restored', 'FromSnapshot', 'Wakeup', 'Recreated'],
  3: ['Paused', 'Migrated', 'IoError', 'Watchdog', 'Restored', 'FromSnapshot', 'ApiError', 'Postcopy', 'PostcopyFailed'],
  4: ['Unpaused', 'Migrated', 'FromSnapshot', 'Postcopy', 'PostcopyFailed'],
  5: ['Shutdown', 'Destroyed', 'Crashed', 'Migrated', 'Saved', 'Failed', 'FromSnapshot', 'Recreated'],
  6: ['Finished', 'Guest', 'Host'],
  7: ['Memory', 'Disk'],
  8: ['Panicked', 'CrashLoaded'],
};

/** "Stopped/Destroyed"; unknown numbers stay visible as numbers (newer libvirt adds values). */
export function eventName(event: number, detail: number): string {
  const e = eventNames[event] ?? `event${event}`;
  const d = detailNames[event]?.[detail] ?? `detail${detail}`;
  return `${e}/${d}`;
}

/** libvirt-dbus encodes a domain UUID into its object path as `_` + the UUID with `-` replaced by `_`. */
export function uuidFromDomainPath(path: string): string | undefined {
  const last = path.slice(path.lastIndexOf('/') + 1);
  const m = /^_([0-9a-f]{8})_([0-9a-f]{4})_([0-9a-f]{4})_([0-9a-f]{4})_([0-9a-f]{12})$/i.exec(last);
  return m ? m.slice(1, 6).join('-').toLowerCase() : undefined;
}

export function domainPathFromUuid(connectionPath: string, uuid: string): string {
  return `${connectionPath}/domain/_${uuid.toLowerCase().replace(/-/g, '_')}`;
}
