import { lvKey, type LvRef } from '../locks/lv.js';
import type { RunResult } from './run.js';

export type LvmErrorClass =
  | 'locked-by-other-host'
  | 'in-use'
  | 'lockspace-inactive'
  | 'orphan-lock'
  | 'lv-not-found'
  | 'vg-not-found'
  | 'sh-not-supported'
  | 'incompatible-mode'
  | 'vg-lock-failed'
  | 'lease-storage'
  | 'timeout'
  | 'command-line'
  | 'failed';

export interface LvFailure {
  lv?: LvRef;
  cls: LvmErrorClass;
  /** The lvm line(s), trimmed, joined by newlines. */
  message: string;
  /** The lock holder, from "(host_id N)" (lvm >= 2.03.33, sanlock only). */
  hostId?: number;
}

/** lvm's EINVALID_CMD_LINE (tools/errors.h). */
const EXIT_COMMAND_LINE = 3;

/**
 * Only transient conditions are worth an automatic retry:
 * - vg-lock-failed: the VG lock is held only for the length of another host's command; lvm already
 *   retried a few times, a later attempt normally gets it.
 * - timeout: the command was killed, so the outcome is unknown; repeating the same request is safe
 *   because lvmlockd treats a request for the mode already held as success.
 * The rest are answers, not accidents. locked-by-other-host is a real refusal: lvmlockd has no wait
 * queue for LV locks, so waiting for a holder to go away is a policy decision (polling where the
 * policy says so, e.g. after a host failure), not a blind retry here. in-use needs the user of the
 * LV to close it; the remaining classes need an administrator or a different request.
 */
export function isRetryable(cls: LvmErrorClass): boolean {
  return cls === 'vg-lock-failed' || cls === 'timeout';
}

// LVM names never contain white space or '/'; a VG/LV pair is therefore two such runs around one '/'.
const NAME = '[^\\s/"]+';
const LV_PAIR = `(${NAME})/(${NAME})`;
const HOST_ID = '(?: \\(host_id (\\d+)\\))?';

/** A line that names one LV and gives the reason it failed. */
interface LvLine {
  kind: 'lv';
  key: string;
  cls: LvmErrorClass;
  hostId?: number;
}
/** "Failed to lock logical volume VG/LV.": the verdict that follows the reason. */
interface VerdictLine {
  kind: 'verdict';
  key: string;
}
/** A line about a whole volume group: every requested LV of it failed. */
interface VgLine {
  kind: 'vg';
  vg: string;
  cls: LvmErrorClass;
  hostId?: number;
}
interface OtherLine {
  kind: 'other';
}
interface IgnoredLine {
  kind: 'ignored';
}
type ParsedLine = LvLine | VerdictLine | VgLine | OtherLine | IgnoredLine;

function lockFailedReason(reason: string): LvmErrorClass {
  if (reason.startsWith('lockspace is inactive')) return 'lockspace-inactive';
  if (reason.startsWith('orphan lock needs to be adopted')) return 'orphan-lock';
  if (/^storage (failed|errors) for sanlock leases/.test(reason)) return 'lease-storage';
  if (reason.startsWith('io timeout')) return 'lease-storage';
  if (reason.startsWith('sanlock lease needs repair')) return 'lease-storage';
  return 'failed';
}

function vgLockFailedReason(reason: string): LvmErrorClass {
  // Another host's command holds the transient VG lock, or the lockspace is still joining.
  if (reason.startsWith('held by other host') || reason.startsWith('lock start in progress')) return 'vg-lock-failed';
  return lockFailedReason(reason);
}

function hostIdOf(text: string | undefined): number | undefined {
  return text === undefined ? undefined : Number(text);
}

/** Classifies one trimmed, non-empty stderr line. Texts are those of lib/locking/lvmlockd.c and friends. */
function parseLine(line: string): ParsedLine {
  // Warnings never decide the outcome; lvm reports the real failure, if any, with an error line.
  // "Retrying …", "Skipping global lock …" and "VG … lock skipped: …" are warnings without the prefix.
  if (/^WARNING:/i.test(line)) return { kind: 'ignored' };
  if (/^(Retrying (global )?lock|Retrying lock on VG|Skipping global lock|VG \S+ lock skipped:)/.test(line)) {
    return { kind: 'ignored' };
  }

  let m: RegExpExecArray | null;
  if ((m = new RegExp(`^LV locked by other host: ${LV_PAIR}${HOST_ID}$`).exec(line))) {
    return { kind: 'lv', key: `${m[1]}/${m[2]}`, cls: 'locked-by-other-host', hostId: hostIdOf(m[3]) };
  }
  if ((m = new RegExp(`^Failed to lock logical volume ${LV_PAIR}\\.$`).exec(line))) {
    return { kind: 'verdict', key: `${m[1]}/${m[2]}` };
  }
  if ((m = new RegExp(`^Logical volume ${LV_PAIR} in use\\.?$`).exec(line))) {
    return { kind: 'lv', key: `${m[1]}/${m[2]}`, cls: 'in-use' };
  }
  if ((m = new RegExp(`^LV ${LV_PAIR} has open \\d+ snapshot\\(s\\), not deactivating\\.?$`).exec(line))) {
    return { kind: 'lv', key: `${m[1]}/${m[2]}`, cls: 'in-use' };
  }
  if ((m = new RegExp(`^LV ${LV_PAIR} lock failed: (.*)$`).exec(line))) {
    return { kind: 'lv', key: `${m[1]}/${m[2]}`, cls: lockFailedReason(m[3] ?? '') };
  }
  if ((m = new RegExp(`^LV is already locked with incompatible mode: ${LV_PAIR}$`).exec(line))) {
    return { kind: 'lv', key: `${m[1]}/${m[2]}`, cls: 'incompatible-mode' };
  }
  if ((m = new RegExp(`^Shared activation not compatible with LV type .* of ${LV_PAIR}$`).exec(line))) {
    return { kind: 'lv', key: `${m[1]}/${m[2]}`, cls: 'sh-not-supported' };
  }
  if ((m = new RegExp(`^Failed to find logical volume "${LV_PAIR}"$`).exec(line))) {
    return { kind: 'lv', key: `${m[1]}/${m[2]}`, cls: 'lv-not-found' };
  }
  if ((m = new RegExp(`^Locking failed for LV ${LV_PAIR}$`).exec(line))) {
    // lvmlockd did not answer (not running); the line names the LV, the class stays generic.
    return { kind: 'lv', key: `${m[1]}/${m[2]}`, cls: 'failed' };
  }
  if ((m = new RegExp(`^Volume group "(${NAME})" not found`).exec(line))) {
    return { kind: 'vg', vg: m[1]!, cls: 'vg-not-found' };
  }
  if ((m = new RegExp(`^Cannot process volume group (${NAME})$`).exec(line))) {
    return { kind: 'vg', vg: m[1]!, cls: 'vg-not-found' };
  }
  if ((m = new RegExp(`^Cannot access VG (${NAME}) due to failed lock\\.?$`).exec(line))) {
    // Activation needs the VG lock first; with no lockspace started lvmlockd refuses it (ENOLS)
    // and lvm prints only this line. A preceding "VG … lock failed: <why>" line, when present,
    // is more specific and wins (see mergeInto).
    return { kind: 'vg', vg: m[1]!, cls: 'lockspace-inactive' };
  }
  if ((m = new RegExp(`^VG (${NAME}) lock failed: (.*?)${HOST_ID}$`).exec(line))) {
    return { kind: 'vg', vg: m[1]!, cls: vgLockFailedReason(m[2] ?? ''), hostId: hostIdOf(m[3]) };
  }
  return { kind: 'other' };
}

function meaningfulLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether an unrecognised line names this LV as a word of its own ("vg0/lv1", not "vg0/lv10"). */
function mentions(line: string, key: string): boolean {
  return new RegExp(`(^|[\\s"'(])${escapeRegExp(key)}($|[\\s"'.,:;)])`).test(line);
}

interface Draft {
  cls: LvmErrorClass;
  lines: string[];
  hostId?: number;
}

function mergeInto(drafts: Map<string, Draft>, key: string, cls: LvmErrorClass, line: string, hostId?: number): void {
  const draft = drafts.get(key);
  if (!draft) {
    drafts.set(key, { cls, lines: [line], hostId });
    return;
  }
  draft.lines.push(line);
  // The first specific reason wins; a generic one never hides it.
  if (draft.cls === 'failed' && cls !== 'failed') draft.cls = cls;
  if (draft.hostId === undefined && hostId !== undefined) draft.hostId = hostId;
}

function toFailure(lv: LvRef | undefined, d: Draft): LvFailure {
  const f: LvFailure = { cls: d.cls, message: d.lines.join('\n') };
  if (lv) f.lv = lv;
  if (d.hostId !== undefined) f.hostId = d.hostId;
  return f;
}

function uniqueRefs(requested: LvRef[]): LvRef[] {
  const seen = new Map<string, LvRef>();
  for (const ref of requested) if (!seen.has(lvKey(ref))) seen.set(lvKey(ref), { vg: ref.vg, lv: ref.lv });
  return [...seen.values()];
}

/** One failure per requested LV (or one without an LV when none was requested). */
function everyone(requested: LvRef[], d: Draft): LvFailure[] {
  if (requested.length === 0) return [toFailure(undefined, d)];
  return requested.map((lv) => toFailure(lv, { ...d, lines: [...d.lines] }));
}

/**
 * Splits a finished command's outcome into per-LV failures. An empty list means every requested LV
 * succeeded. Judged by the exit code first: warnings on stderr come with exit 0 too.
 */
export function classifyFailure(run: RunResult, requested: LvRef[]): LvFailure[] {
  const refs = uniqueRefs(requested);
  const stderrLines = meaningfulLines(run.stderr);
  const nonWarnings = stderrLines.filter((l) => parseLine(l).kind !== 'ignored');

  if (run.timedOut) {
    const secs = Math.round(run.ms / 100) / 10;
    return everyone(refs, { cls: 'timeout', lines: [`timed out after ${secs}s and was killed`] });
  }
  if (run.rc === 0) return [];
  if (run.rc === null) {
    const why = run.signal ? `killed by ${run.signal}` : 'did not run';
    return everyone(refs, { cls: 'failed', lines: [why, ...nonWarnings] });
  }
  if (run.rc === EXIT_COMMAND_LINE) {
    return everyone(refs, {
      cls: 'command-line',
      lines: nonWarnings.length > 0 ? nonWarnings : [`exit code ${run.rc}: command line rejected`],
    });
  }

  const byKey = new Map(refs.map((r) => [lvKey(r), r]));
  const drafts = new Map<string, Draft>();
  const unattributed: string[] = [];
  // A reason naming an LV that was not requested (a thin LV's pool) waits for the verdict line
  // "Failed to lock logical volume VG/LV." that names the requested LV.
  let pending: { line: string; cls: LvmErrorClass; hostId?: number } | undefined;
  let firstClass: LvmErrorClass | undefined;

  const flushPending = (): void => {
    if (pending) unattributed.push(pending.line);
    pending = undefined;
  };

  for (const line of stderrLines) {
    const p = parseLine(line);
    if (p.kind === 'ignored') continue;
    if (p.kind !== 'other' && p.kind !== 'verdict') firstClass ??= p.cls;

    if (p.kind === 'lv') {
      if (byKey.has(p.key)) {
        flushPending();
        mergeInto(drafts, p.key, p.cls, line, p.hostId);
      } else {
        flushPending();
        pending = { line, cls: p.cls, hostId: p.hostId };
      }
    } else if (p.kind === 'verdict') {
      if (!byKey.has(p.key)) {
        flushPending();
        unattributed.push(line);
      } else if (drafts.has(p.key)) {
        flushPending();
        mergeInto(drafts, p.key, 'failed', line);
      } else if (pending) {
        mergeInto(drafts, p.key, pending.cls, pending.line, pending.hostId);
        mergeInto(drafts, p.key, 'failed', line);
        pending = undefined;
      } else {
        mergeInto(drafts, p.key, 'failed', line);
      }
    } else if (p.kind === 'vg') {
      flushPending();
      const members = refs.filter((r) => r.vg === p.vg);
      if (members.length === 0) unattributed.push(line);
      for (const r of members) mergeInto(drafts, lvKey(r), p.cls, line, p.hostId);
    } else {
      flushPending();
      const named = refs.filter((r) => mentions(line, lvKey(r)));
      if (named.length === 0) unattributed.push(line);
      for (const r of named) mergeInto(drafts, lvKey(r), 'failed', line);
    }
  }
  flushPending();

  if (refs.length === 0) {
    const lines = nonWarnings.length > 0 ? nonWarnings : [`exit code ${run.rc} with no error message`];
    return [toFailure(undefined, { cls: firstClass ?? 'failed', lines })];
  }

  // The exit code says something failed. An LV that no line clears may have failed: never call it ok.
  if (drafts.size === 0 || unattributed.length > 0) {
    const lines = unattributed.length > 0 ? unattributed : nonWarnings;
    const generic = lines.length > 0 ? lines : [`exit code ${run.rc} with no error message`];
    for (const r of refs) {
      if (!drafts.has(lvKey(r))) drafts.set(lvKey(r), { cls: 'failed', lines: [...generic] });
    }
  }

  return refs.filter((r) => drafts.has(lvKey(r))).map((r) => toFailure(r, drafts.get(lvKey(r))!));
}

function lockFailedDetail(message: string): string | undefined {
  const m = /lock failed: (.*)$/m.exec(message);
  return m?.[1]?.replace(/\.$/, '');
}

/** One human line, e.g. "vg0/lv1: locked by another host (host_id 2)". */
export function describeFailure(f: LvFailure): string {
  const oneLine = f.message.split('\n').join('; ');
  const host = f.hostId !== undefined ? ` (host_id ${f.hostId})` : '';
  let text: string;
  switch (f.cls) {
    case 'locked-by-other-host':
      text = `locked by another host${host}`;
      break;
    case 'in-use':
      text = 'in use (still open on this host), not deactivated; its lock stays held';
      break;
    case 'lockspace-inactive':
      text = 'the lockspace of its volume group is not started on this host (vgchange --lockstart)';
      break;
    case 'orphan-lock':
      text = 'an orphan lock left by an earlier lvmlockd needs to be adopted';
      break;
    case 'lv-not-found':
      text = 'no such logical volume';
      break;
    case 'vg-not-found':
      text = 'volume group not found';
      break;
    case 'sh-not-supported': {
      const type = /LV type (.*?) of /.exec(f.message)?.[1];
      text = `shared activation is not supported for this LV type${type ? ` (${type})` : ''}`;
      break;
    }
    case 'incompatible-mode':
      text = 'already locked here in an incompatible mode';
      break;
    case 'vg-lock-failed':
      text = `could not take the volume group lock (${lockFailedDetail(f.message) ?? oneLine})`;
      break;
    case 'lease-storage':
      text = `sanlock lease storage problem (${lockFailedDetail(f.message) ?? oneLine})`;
      break;
    case 'timeout':
      text = oneLine;
      break;
    case 'command-line':
      text = `LVM rejected the command line: ${oneLine}`;
      break;
    case 'failed':
      text = oneLine;
      break;
  }
  return f.lv ? `${lvKey(f.lv)}: ${text}` : text;
}
