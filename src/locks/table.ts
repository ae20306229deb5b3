import type { LockMode } from './lv.js';

/**
 * Where a domain is in its life on this host, as far as locks are concerned.
 * starting: the prepare hook took its locks, QEMU is not confirmed running yet.
 * incoming: destination of a live migration, holding sh.
 * running: confirmed running (event or reconcile).
 * migrating-out: source of a live migration that passed the switchover.
 * releasing: stopped, but some of its locks could not be released yet (retried by reconcile).
 */
export type Phase = 'starting' | 'incoming' | 'running' | 'migrating-out' | 'releasing';

export interface DomainEntry {
  uuid: string;
  name: string;
  phase: Phase;
  /** When the phase was entered (ms since epoch). */
  since: number;
  /** Managed LVs this domain uses ("vg/lv") and the mode it holds them in now (sh while migrating). */
  wanted: Map<string, LockMode>;
  /** The domain's own modes: ex, or sh for shareable/readonly disks; what it returns to after a migration. */
  own: Map<string, LockMode>;
  /** Device alias to the LVs of that disk, from the live XML, to release a hot-unplugged disk. */
  aliases: Map<string, string[]>;
  lastError?: string;
  /** The other host of a migration in progress (who asked us to demote, or whom we asked). */
  peer?: string;
  /** Source side: the guest paused for the switchover, so the migration can no longer fall back silently. */
  switchedOver?: boolean;
  /** Source side: demoted by the admin's migrate-out rather than by a peer's request. */
  manualDemote?: boolean;
  /**
   * Destination side: announced by the `migrate` hook, then prepared once libvirt's `prepare`
   * follows. An announced incoming that is never prepared was abandoned.
   */
  incoming?: 'announced' | 'prepared';
  /** When the `migrate` hook that announced the incoming migration was answered. */
  announcedAt?: number;
  /**
   * libvirt has shown this run of the domain active (listed, or its Started event). Before that
   * the hook's entry waits out a start grace; after it, absent from libvirt's list means gone.
   */
  seenActive?: boolean;
}

export interface HeldLock {
  mode: LockMode;
  since: number;
}

/** What a held LV that no local domain uses is: ours (released at the next reconcile) or an admin's. */
export type UnusedKind = 'held, unused' | 'held, not ours';

export interface LockStatus {
  lv: string;
  mode: LockMode | 'none';
  domain: string;
  name: string;
  phase: Phase | UnusedKind;
  wanted: LockMode;
  since: number;
  lastError?: string;
  peer?: string;
}

/**
 * The daemon's cache of what lvmlockd granted on this host plus each domain's intent.
 * lvmlockd stays the truth: this table is rebuilt by reconcile and updated only from LVM results.
 */
export class LockTable {
  readonly domains = new Map<string, DomainEntry>();
  readonly held = new Map<string, HeldLock>();
  /** LVs this daemon took (or adopted for a running domain); held LVs outside it are not ours. */
  readonly owned = new Map<string, { domain?: string; mode?: LockMode }>();

  usersOf(lv: string, exceptUuid?: string): DomainEntry[] {
    const users: DomainEntry[] = [];
    for (const entry of this.domains.values()) {
      if (entry.uuid !== exceptUuid && entry.wanted.has(lv)) users.push(entry);
    }
    return users;
  }

  /** The mode the LV needs across all local users: ex if any user needs ex. */
  neededMode(lv: string): LockMode | undefined {
    let mode: LockMode | undefined;
    for (const entry of this.domains.values()) {
      const m = entry.wanted.get(lv);
      if (m === 'ex') return 'ex';
      if (m) mode = 'sh';
    }
    return mode;
  }

  setHeld(lv: string, mode: LockMode | 'off', now: number): void {
    if (mode === 'off') {
      this.held.delete(lv);
      return;
    }
    const prev = this.held.get(lv);
    if (prev?.mode === mode) return;
    this.held.set(lv, { mode, since: now });
  }

  status(): LockStatus[] {
    const rows: LockStatus[] = [];
    for (const entry of this.domains.values()) {
      for (const [lv, wanted] of entry.wanted) {
        rows.push({
          lv,
          mode: this.held.get(lv)?.mode ?? 'none',
          domain: entry.uuid,
          name: entry.name,
          phase: entry.phase,
          wanted,
          since: this.held.get(lv)?.since ?? entry.since,
          lastError: entry.lastError,
          peer: entry.peer,
        });
      }
    }
    // Held LVs no domain uses: an admin's activation is shown as such and never released by default.
    for (const [lv, held] of this.held) {
      if (this.usersOf(lv).length > 0) continue;
      const phase: UnusedKind = this.owned.has(lv) ? 'held, unused' : 'held, not ours';
      rows.push({ lv, mode: held.mode, domain: '-', name: '-', phase, wanted: held.mode, since: held.since });
    }
    return rows.sort((a, b) => a.lv.localeCompare(b.lv) || a.domain.localeCompare(b.domain));
  }
}
