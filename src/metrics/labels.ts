/**
 * Label values for the metrics, as pure functions. A Prometheus label must take a small, fixed
 * set of values: the engine's cause texts carry domain, device and peer names, so they are
 * mapped to a fixed vocabulary of kinds here, and anything unforeseen becomes "other".
 */
import { HOOK_OPS } from '../config/types.js';
import type { PeerReply } from '../peers/client.js';

/** Every value causeLabel can return, for the metric's help text and the tests. */
export const CAUSE_LABELS = [
  ...HOOK_OPS.map((op) => `hook_${op}` as const),
  'rollback',
  'reconcile',
  'device_added',
  'device_removed',
  'peer_demote',
  'peer_released',
  'migration_failed',
  'demotion_failed',
  'incoming_abandoned',
  'migration_ended',
  'admin',
  'event',
  'other',
] as const;
export type CauseLabel = (typeof CAUSE_LABELS)[number];

/** First match wins; each pattern is the opening the engine gives that cause ("(retry)" suffixes keep their kind). */
const CAUSE_RULES: ReadonlyArray<readonly [RegExp, CauseLabel]> = [
  [/^rollback of failed /, 'rollback'],
  [/^reconcile\b/, 'reconcile'],
  [/^device .* added$/, 'device_added'],
  [/^device .* removed$/, 'device_removed'],
  [/^demote requested by /, 'peer_demote'],
  [/^(migrate-out|settle)\b/, 'admin'],
  [/^migration to .* failed/, 'migration_failed'],
  [/^demotion failed/, 'demotion_failed'],
  [/^incoming migration /, 'incoming_abandoned'],
  [/^(migration over|its outgoing migration ended|no migration job after demotion)/, 'migration_ended'],
  // libvirt events, named Event/Detail, alone or inside "stopped (...)" / "offline migration (...)".
  [/^(stopped|offline migration) \(|^[A-Z][A-Za-z]+\/[A-Za-z]+/, 'event'],
  [/^\S+ released\b/, 'peer_released'],
];

const HOOK_CAUSES = new Set<string>(HOOK_OPS);

export function causeLabel(cause: string): CauseLabel {
  const hook = /^hook (\w+)/.exec(cause);
  if (hook) return HOOK_CAUSES.has(hook[1]!) ? (`hook_${hook[1]}` as CauseLabel) : 'other';
  for (const [pattern, label] of CAUSE_RULES) if (pattern.test(cause)) return label;
  return 'other';
}

/** A hook op as libvirt names it, or "unknown" for anything else a caller sent. */
export function hookOpLabel(op: string): string {
  return HOOK_CAUSES.has(op) ? op : 'unknown';
}

/**
 * A peer that answered at all is reachable, whatever it answered (a refusal, a 404 from an older
 * daemon): its daemon is up and the TLS handshake passed. No HTTP status means no answer.
 */
export function peerReachable(reply: PeerReply): boolean {
  return reply.status !== undefined;
}
