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
