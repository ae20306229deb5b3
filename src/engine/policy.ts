import type { Action, HookOp } from '../config/types.js';
import type { LockMode, TargetMode } from '../locks/lv.js';
import { parseLvKey } from '../locks/lv.js';
import type { DomainEntry, LockTable, Phase } from '../locks/table.js';

/**
 * The lock policy as pure functions: given the table and one input, they say what should happen.
 * They do no I/O, so every decision is testable by feeding inputs and reading the result.
 */

export type { Action, HookOp } from '../config/types.js';

/** One lvchange: all the listed LVs of one VG to one mode. */
export interface Transition {
  vg: string;
  lvs: string[];
  to: TargetMode;
}

export type HookDecision =
  /** Nothing to change; answer the hook with success. */
  | { kind: 'allow'; note: string }
  /** Refuse the hook: libvirt fails the start or migration. */
  | { kind: 'refuse'; reason: string }
  /** The `prepare` that libvirt runs right after `migrate` for a live incoming migration. */
  | { kind: 'confirm-incoming' }
  /** Take the domain's managed LVs: in their own modes (ex, sh for shareable), or all sh. */
  | { kind: 'lock'; modes: 'own' | 'shared'; phase: Phase };

/**
 * What a synchronous hook call asks for. Only begin-ops reach here (the hook forwards nothing else).
 * An incoming migration is trusted only as far as libvirt carries it out: its `migrate` hook takes
 * sh, the `prepare` that follows at once confirms it, and the later start hooks change nothing.
 * Any other start takes ex like every start, and a `migrate` for a domain running here is refused.
 */
export function decideHook(op: HookOp, subop: string, entry: DomainEntry | undefined, actions: Record<HookOp, Action>): HookDecision {
  if (subop !== 'begin') return { kind: 'allow', note: `${op} ${subop} needs no lock change` };
  if (op === 'migrate') {
    if (entry && (entry.phase === 'running' || entry.phase === 'starting' || entry.phase === 'migrating-out')) {
      return { kind: 'refuse', reason: `domain ${entry.name} already runs on this host (${entry.phase}); an incoming migration of it cannot be accepted` };
    }
    const action = actions.migrate;
    if (action === 'none') return { kind: 'allow', note: 'migrate action is none' };
    return { kind: 'lock', modes: action === 'exclusive' ? 'own' : 'shared', phase: 'incoming' };
  }
  if (entry?.phase === 'incoming') {
    if (op === 'prepare' && entry.incoming === 'announced') return { kind: 'confirm-incoming' };
    if (op !== 'prepare') return { kind: 'allow', note: `${op} during an incoming migration keeps the shared locks` };
    // A second prepare is a new start, not the incoming migration: it needs ex like any start.
  }
  if (op === 'prepare' || op === 'start' || op === 'started') {
    const action = actions[op];
    if (action === 'none' || action === 'unlock') return { kind: 'allow', note: `${op} action is ${action}` };
    return { kind: 'lock', modes: action === 'exclusive' ? 'own' : 'shared', phase: 'starting' };
  }
  return { kind: 'allow', note: `${op} needs no lock change` };
}

/** The mode each LV gets for a lock decision. */
export function modesFor(wanted: Map<string, LockMode>, modes: 'own' | 'shared'): Map<string, LockMode> {
  if (modes === 'own') return new Map(wanted);
  return new Map([...wanted.keys()].map((lv) => [lv, 'sh' as LockMode]));
}

export interface LocalConflict {
  lv: string;
  reason: string;
}

/**
 * lvmlockd only arbitrates between hosts: on one host a second domain would get an LV that is
 * already active. So two local domains may share an LV only if both want it sh.
 */
export function localConflicts(table: LockTable, uuid: string, wanted: Map<string, LockMode>): LocalConflict[] {
  const conflicts: LocalConflict[] = [];
  for (const [lv, mode] of wanted) {
    for (const other of table.usersOf(lv, uuid)) {
      const otherMode = other.wanted.get(lv);
      if (mode === 'ex' || otherMode === 'ex') {
        conflicts.push({
          lv,
          reason: `already used by domain ${other.name} (${other.uuid}) on this host, which holds it ${otherMode}; an LV can be shared only when every user marks it shareable or readonly`,
        });
      }
    }
  }
  return conflicts;
}

/** Groups LVs by VG and target mode: one lvchange per VG per mode. */
export function groupTransitions(targets: Map<string, TargetMode>): Transition[] {
  const groups = new Map<string, Transition>();
  for (const [key, to] of targets) {
    const { vg, lv } = parseLvKey(key);
    const id = `${vg}\u0000${to}`;
    let t = groups.get(id);
    if (!t) {
      t = { vg, lvs: [], to };
      groups.set(id, t);
    }
    t.lvs.push(lv);
  }
  const list = [...groups.values()];
  for (const t of list) t.lvs.sort();
  // Release before taking, and stable order, so runs are reproducible.
  const order: Record<TargetMode, number> = { off: 0, sh: 1, ex: 2 };
  return list.sort((a, b) => a.vg.localeCompare(b.vg) || order[a.to] - order[b.to]);
}

/**
 * What releasing one domain's use of an LV means: off when no other local domain uses it, a
 * demotion to sh when the remaining users only need sh, nothing otherwise.
 */
export function releaseTarget(table: LockTable, uuid: string, lv: string): TargetMode | undefined {
  const others = table.usersOf(lv, uuid);
  if (others.length === 0) return 'off';
  const remaining = others.some((o) => o.wanted.get(lv) === 'ex') ? 'ex' : 'sh';
  if (table.held.get(lv)?.mode === 'ex' && remaining === 'sh') return 'sh';
  return undefined;
}

/** What to release when a domain stops, for each of its LVs. */
export function releaseTargets(table: LockTable, uuid: string): Map<string, TargetMode> {
  const entry = table.domains.get(uuid);
  const targets = new Map<string, TargetMode>();
  for (const lv of entry?.wanted.keys() ?? []) {
    const to = releaseTarget(table, uuid, lv);
    if (to) targets.set(lv, to);
  }
  return targets;
}

export interface RunningDomain {
  uuid: string;
  name: string;
  /** The domain's own modes, from its live XML. */
  own: Map<string, LockMode>;
  aliases: Map<string, string[]>;
  /** False when its XML could not be read or a disk not resolved: keep what the table knows. */
  complete: boolean;
  /** Its XML could not be read at all (a slow call, or gone meanwhile). */
  unreadable?: boolean;
  /** What libvirt shows of a migration in progress, for a domain the table does not know. */
  migration?: 'incoming' | 'outgoing';
}

export interface ReconcilePlan {
  /** Per domain, the modes it should hold now (sh while migrating), to compare with lvmlockd. */
  wanted: Map<string, Map<string, LockMode>>;
  /** Held LVs of managed VGs that no local domain uses and that are ours to release. */
  release: string[];
  /** Of `release`, those the daemon did not take (only with releaseForeign). */
  foreignReleased: string[];
  /** Held LVs that no local domain uses and the daemon did not take: reported, left alone. */
  notOurs: string[];
  /** Table entries of domains that are no longer running and not within their start grace. */
  forget: string[];
  problems: string[];
}

/** The phases in which a domain holds every LV shared, whatever its own modes. */
export function isMigrating(phase: Phase | undefined): boolean {
  return phase === 'incoming' || phase === 'migrating-out';
}

/** The modes a domain should hold in its phase. */
export function currentModes(own: Map<string, LockMode>, phase: Phase | undefined): Map<string, LockMode> {
  return isMigrating(phase) ? modesFor(own, 'shared') : new Map(own);
}

/**
 * Compares what runs with what lvmlockd holds. A domain the table knows in phase starting or
 * incoming is not in libvirt's list for a while (the hook runs before QEMU exists): its LVs are kept
 * while it is within the grace period. A listed domain whose XML could not be read keeps what the
 * table knows of it, so a slow libvirt call never makes its locks look unused.
 */
export function planReconcile(input: {
  running: RunningDomain[];
  held: Map<string, LockMode>;
  table: LockTable;
  now: number;
  startGraceMs: number;
  /** LVs the daemon took; others are never released unless releaseForeign. */
  owned: { has(lv: string): boolean; get(lv: string): { domain?: string } | undefined };
  releaseForeign: boolean;
}): ReconcilePlan {
  const { running, held, table, now, startGraceMs, owned, releaseForeign } = input;
  const plan: ReconcilePlan = { wanted: new Map(), release: [], foreignReleased: [], notOurs: [], forget: [], problems: [] };
  const runningIds = new Set(running.map((d) => d.uuid));
  const needed = new Map<string, LockMode>();
  const need = (lv: string, mode: LockMode) => {
    needed.set(lv, needed.get(lv) === 'ex' || mode === 'ex' ? 'ex' : 'sh');
  };

  for (const entry of table.domains.values()) {
    if (runningIds.has(entry.uuid)) continue;
    const pending = (entry.phase === 'starting' || entry.phase === 'incoming') && !entry.seenActive && now - entry.since < startGraceMs;
    if (pending) {
      for (const [lv, mode] of entry.wanted) need(lv, mode);
    } else {
      plan.forget.push(entry.uuid);
    }
  }

  for (const domain of running) {
    const entry = table.domains.get(domain.uuid);
    const phase = entry?.phase ?? (domain.migration === 'incoming' ? 'incoming' : undefined);
    const wanted = domain.complete ? currentModes(domain.own, phase) : new Map(entry?.wanted ?? []);
    if (!domain.complete) {
      // What the XML did resolve is still wanted, on top of what the table knew.
      for (const [lv, mode] of currentModes(domain.own, phase)) if (!wanted.has(lv)) wanted.set(lv, mode);
    }
    for (const [lv, mode] of wanted) need(lv, mode);
    if (domain.complete) plan.wanted.set(domain.uuid, wanted);
  }

  // Two local users needing different modes of one LV cannot both be satisfied: keep ex, report.
  for (const domain of running) {
    const wanted = plan.wanted.get(domain.uuid);
    for (const [lv, mode] of wanted ?? []) {
      if (mode === 'sh' && needed.get(lv) === 'ex') {
        plan.problems.push(`${lv}: domain ${domain.name} needs it shared while another local domain needs it exclusive`);
      }
    }
  }

  // A running domain that could not be read completely may use any held LV, except one recorded
  // as taken for another domain, which is not running here.
  const incomplete = running.filter((d) => !d.complete);
  const unreadable = incomplete.map((d) => d.name);
  const mayBelongToUnread = (lv: string) => {
    const owner = owned.get(lv)?.domain;
    return owner === undefined || owner === '-' || incomplete.some((d) => d.uuid === owner);
  };
  for (const lv of [...held.keys()].sort()) {
    if (needed.has(lv)) continue;
    if (!owned.has(lv)) {
      if (!releaseForeign) {
        plan.notOurs.push(lv);
        continue;
      }
      plan.foreignReleased.push(lv);
    }
    plan.release.push(lv);
  }
  const heldBack = unreadable.length > 0 ? plan.release.filter(mayBelongToUnread) : [];
  if (heldBack.length > 0) {
    plan.problems.push(
      `not releasing ${heldBack.join(', ')}: running domain${unreadable.length > 1 ? 's' : ''} ${unreadable.join(', ')} could not be read completely and may use them`,
    );
    plan.release = plan.release.filter((lv) => !heldBack.includes(lv));
    plan.foreignReleased = plan.foreignReleased.filter((lv) => !heldBack.includes(lv));
  }
  return plan;
}

/** What an LV needs across the local domains (for the reconcile task, re-read when it runs). */
export function takeTargets(table: LockTable, uuid: string): { take: Map<string, LockMode>; problems: string[] } {
  const entry = table.domains.get(uuid);
  const take = new Map<string, LockMode>();
  const problems: string[] = [];
  if (!entry) return { take, problems };
  for (const [lv, mode] of entry.wanted) {
    const needed = table.neededMode(lv);
    if (mode === 'sh' && needed === 'ex') {
      problems.push(`${lv}: domain ${entry.name} needs it shared while another local domain needs it exclusive`);
      continue;
    }
    if (table.held.get(lv)?.mode !== mode) take.set(lv, mode);
  }
  return { take, problems };
}
