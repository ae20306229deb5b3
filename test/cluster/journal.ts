/**
 * The daemon's journal on a hypervisor, read as records: the audit lines (`lock DOMAIN=… LV=…
 * FROM=… TO=… RESULT=… MS=… CAUSE=…`) with their journal time and priority, and guest clock
 * offsets so that times read on two hosts can be compared.
 */
import type { Hypervisor } from './hypervisor.js';

const QUICK_MS = 60_000;

export interface JournalLine {
  /** Wall-clock time on that host, in ms since the epoch (journald's __REALTIME_TIMESTAMP). */
  at: number;
  priority: number;
  message: string;
}

export interface AuditLine extends JournalLine {
  fields: Record<string, string>;
}

/** The daemon's lines since a wall-clock time of that host (ms since the epoch). */
export async function daemonLines(hv: Hypervisor, sinceMs: number): Promise<JournalLine[]> {
  const since = `@${(sinceMs / 1000).toFixed(3)}`;
  const out = await hv.mustRun(['journalctl', '-u', 'virt-lvmlockd', '--no-pager', '-o', 'json', '--output-fields=MESSAGE,PRIORITY', '--since', since], { timeoutMs: QUICK_MS });
  const lines: JournalLine[] = [];
  for (const raw of out.split('\n')) {
    if (!raw.trim()) continue;
    const j = JSON.parse(raw) as { __REALTIME_TIMESTAMP: string; PRIORITY?: string; MESSAGE?: string | number[] };
    const message = Array.isArray(j.MESSAGE) ? Buffer.from(j.MESSAGE).toString('utf8') : (j.MESSAGE ?? '');
    lines.push({ at: Number(j.__REALTIME_TIMESTAMP) / 1000, priority: Number(j.PRIORITY ?? 6), message });
  }
  return lines;
}

/** `KEY=value` pairs of an audit line; values may be quoted when they hold spaces. */
export function auditFields(message: string): Record<string, string> | undefined {
  if (!message.startsWith('lock ')) return undefined;
  const fields: Record<string, string> = {};
  for (const m of message.slice(5).matchAll(/([A-Z]+)=("(?:[^"\\]|\\.)*"|\S+)/g)) {
    const v = m[2]!;
    fields[m[1]!] = v.startsWith('"') ? (JSON.parse(v) as string) : v;
  }
  return fields;
}

export function auditLines(lines: JournalLine[], lv?: string): AuditLine[] {
  const out: AuditLine[] = [];
  for (const l of lines) {
    const fields = auditFields(l.message);
    if (fields && (lv === undefined || fields.LV === lv)) out.push({ ...l, fields });
  }
  return out;
}

/** The host's wall clock now, in ms since the epoch. */
export async function guestNow(hv: Hypervisor): Promise<number> {
  return Number((await hv.mustRun(['date', '+%s%3N'], { timeoutMs: QUICK_MS })).trim());
}

/**
 * How far a guest's wall clock is ahead of this process's, from the read with the shortest round
 * trip of a few; the error is at most half that round trip, which is returned with it.
 */
export async function clockOffset(hv: Hypervisor, tries = 5): Promise<{ offsetMs: number; errorMs: number }> {
  let best = { offsetMs: 0, errorMs: Infinity };
  for (let i = 0; i < tries; i++) {
    const t0 = Date.now();
    const guest = await guestNow(hv);
    const t1 = Date.now();
    const error = (t1 - t0) / 2;
    if (error < best.errorMs) best = { offsetMs: guest - (t0 + t1) / 2, errorMs: error };
  }
  return best;
}
