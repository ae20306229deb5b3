import type { HoldingRow } from '../peers/messages.js';

/** One host that holds an LV's lease, and what its daemon said about it. */
export interface Holder {
  hostId: number;
  /** From sanlock (leader owner: ex, mode block: sh); unknown when only lvm named the host. */
  mode?: 'ex' | 'sh';
  /** The configured peer with that host_id; absent when none has it. */
  peer?: string;
  /** The peer's lock-table rows for the LV, when it answered. */
  rows?: HoldingRow[];
  /** Why the domain is unknown, when a peer exists but could not say. */
  domainUnknown?: string;
}

/** Who holds one LV, as far as the sources could tell within the budget. */
export interface HolderReport {
  /** "vg/lv". */
  lv: string;
  holders: Holder[];
  /** Why no holder is known; set exactly when `holders` is empty. */
  unknown?: string;
  /** sanlock read the lease and found no owner: nobody holds it now. */
  free?: boolean;
}

const PHASE_WORDS: Record<string, string> = {
  starting: 'starting',
  incoming: 'arriving by migration',
  running: 'running',
  'migrating-out': 'migrating away',
  releasing: 'stopping',
};

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** "12:03:11" on the day of `now` (local time), else "2026-12-01 12:03:11". Pure. */
export function clockTime(ms: number, now: number): string {
  const d = new Date(ms);
  const today = new Date(now);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const sameDay = d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() && d.getDate() === today.getDate();
  return sameDay ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** "1 s", "500 ms": a budget as a user reads it. */
export function budgetText(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function heldMode(h: Holder): 'ex' | 'sh' | undefined {
  if (h.mode) return h.mode;
  const held = h.rows?.find((r) => r.mode !== 'none')?.mode;
  return held === 'ex' || held === 'sh' ? held : undefined;
}

function whatRunsThere(h: Holder, now: number): string {
  if (h.peer === undefined) return ` (no peer configured with host_id ${h.hostId})`;
  if (h.domainUnknown !== undefined) return `, domain unknown: ${h.domainUnknown}`;
  const rows = h.rows ?? [];
  const domains = rows.filter((r) => r.domain).map((r) => r.domain!);
  if (domains.length > 0) {
    return `, ${domains.map((d) => `domain ${d.name} ${PHASE_WORDS[d.phase] ?? d.phase} there since ${clockTime(d.since, now)}`).join(' and ')}`;
  }
  if (rows.some((r) => r.unused === 'held, not ours')) return `, held there outside virt-lvmlockd (no domain of ${h.peer}'s daemon uses it)`;
  if (rows.some((r) => r.unused === 'held, unused')) return `, held there for no domain (${h.peer}'s daemon releases it at its next reconcile)`;
  return `, domain unknown: ${h.peer}'s daemon does not hold it`;
}

/**
 * One refusal line, e.g. "vg0/lv3: locked ex by hv2 (host_id 2), domain db running there since
 * 12:03:11". Says only what the sources said; each missing piece is named as unknown. Pure.
 */
export function describeHolders(report: HolderReport, now: number): string {
  if (report.holders.length === 0) return `${report.lv}: locked by another host (holder unknown: ${report.unknown ?? 'no source named it'})`;
  const parts = report.holders.map((h) => {
    const mode = heldMode(h);
    const who = h.peer !== undefined ? `${h.peer} (host_id ${h.hostId})` : `host_id ${h.hostId}`;
    return `${mode ? `${mode} ` : ''}by ${who}${whatRunsThere(h, now)}`;
  });
  return `${report.lv}: locked ${parts.join(', and ')}`;
}
