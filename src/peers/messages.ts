/**
 * The handoff messages between the daemons of two hosts. Every message names the domain and the
 * LV set, and every one is idempotent: a retry or a duplicate changes nothing more.
 */
export type PeerMessageKind = 'demote' | 'released' | 'migration-failed' | 'migrating';

/** `migrating` asks a source whether its outgoing migration of the domain is still running. */
export const PEER_MESSAGE_KINDS: readonly PeerMessageKind[] = ['demote', 'released', 'migration-failed', 'migrating'];

export interface PeerMessage {
  /** Domain UUID. */
  domain: string;
  /** Managed LVs as "vg/lv". */
  lvs: string[];
}

/** What a peer answers; `result` is machine-readable, `detail` is for the log and the user. */
export interface PeerAnswer {
  result: 'demoted' | 'noted' | 'promoted' | 'refused' | 'not-held' | 'migrating';
  detail: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const LV_KEY = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*\/[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/;

/** Validates a received body; throws with a message that says what is wrong. */
export function parsePeerMessage(body: unknown): PeerMessage {
  if (!body || typeof body !== 'object') throw new Error('the body is not a JSON object');
  const { domain, lvs } = body as { domain?: unknown; lvs?: unknown };
  if (typeof domain !== 'string' || !UUID.test(domain)) throw new Error('"domain" must be a domain UUID');
  if (!Array.isArray(lvs) || lvs.length === 0 || lvs.length > 4096) throw new Error('"lvs" must be a non-empty list of VG/LV names');
  for (const lv of lvs) if (typeof lv !== 'string' || !LV_KEY.test(lv)) throw new Error(`"lvs" holds ${JSON.stringify(lv)}, which is not VG/LV`);
  return { domain, lvs: [...new Set(lvs as string[])].sort() };
}

/**
 * `holding` asks a peer what on its side uses some LVs: the daemon that another host's lvm or
 * sanlock named as a lock's holder says which domain runs there. Answered from the lock table
 * alone (no LVM call), so it is quick and changes nothing.
 */
export const HOLDING_KIND = 'holding';

export interface HoldingQuery {
  /** LVs as "vg/lv". */
  lvs: string[];
}

/** One LV as the answering daemon's lock table has it. */
export interface HoldingRow {
  lv: string;
  /** The mode lvmlockd granted on that host, as the table last read it; none when not held. */
  mode: 'ex' | 'sh' | 'none';
  /** The domain using the LV there, if any. */
  domain?: { uuid: string; name: string; phase: string; since: number };
  /** For a held LV no domain uses: whether that daemon took it (unused) or not (an admin's). */
  unused?: 'held, unused' | 'held, not ours';
}

export interface HoldingAnswer {
  result: 'holding';
  detail: string;
  rows: HoldingRow[];
}

/** Validates a received `holding` body; throws with a message that says what is wrong. */
export function parseHoldingQuery(body: unknown): HoldingQuery {
  if (!body || typeof body !== 'object') throw new Error('the body is not a JSON object');
  const { lvs } = body as { lvs?: unknown };
  if (!Array.isArray(lvs) || lvs.length === 0 || lvs.length > 4096) throw new Error('"lvs" must be a non-empty list of VG/LV names');
  for (const lv of lvs) if (typeof lv !== 'string' || !LV_KEY.test(lv)) throw new Error(`"lvs" holds ${JSON.stringify(lv)}, which is not VG/LV`);
  return { lvs: [...new Set(lvs as string[])].sort() };
}

const PHASE_TEXT = /^[a-z ,-]{1,40}$/;

/**
 * Validates a `holding` answer as the client receives it: what another daemon says ends up in a
 * refusal shown to a user, so only well-formed rows about the LVs asked for are kept.
 */
export function parseHoldingAnswer(body: unknown, asked: readonly string[]): HoldingRow[] {
  const rows = (body as { result?: unknown; rows?: unknown } | null)?.rows;
  if ((body as { result?: unknown } | null)?.result !== 'holding' || !Array.isArray(rows)) throw new Error('the answer is not a holding answer');
  const kept: HoldingRow[] = [];
  for (const raw of rows as unknown[]) {
    const r = raw as Partial<HoldingRow> | null;
    if (!r || typeof r.lv !== 'string' || !asked.includes(r.lv)) throw new Error(`the answer names ${JSON.stringify(r?.lv)}, which was not asked for`);
    if (r.mode !== 'ex' && r.mode !== 'sh' && r.mode !== 'none') throw new Error(`the answer gives ${r.lv} the mode ${JSON.stringify(r.mode)}`);
    const row: HoldingRow = { lv: r.lv, mode: r.mode };
    const d = r.domain;
    if (d !== undefined) {
      if (typeof d !== 'object' || d === null || typeof d.uuid !== 'string' || !UUID.test(d.uuid) || typeof d.name !== 'string' || d.name.length === 0 || d.name.length > 256 || /[\0-\x1f]/.test(d.name) || typeof d.phase !== 'string' || !PHASE_TEXT.test(d.phase) || typeof d.since !== 'number' || !Number.isFinite(d.since)) {
        throw new Error(`the answer gives ${r.lv} a malformed domain`);
      }
      row.domain = { uuid: d.uuid, name: d.name, phase: d.phase, since: d.since };
    }
    if (r.unused !== undefined) {
      if (r.unused !== 'held, unused' && r.unused !== 'held, not ours') throw new Error(`the answer gives ${r.lv} an unknown state ${JSON.stringify(r.unused)}`);
      row.unused = r.unused;
    }
    kept.push(row);
  }
  return kept;
}
