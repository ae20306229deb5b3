/** The network between the simulated daemons: loses, delays, duplicates and reorders messages. */
import type { PeerReply } from '../../src/peers/client.js';
import type { PeerMessage, PeerMessageKind } from '../../src/peers/messages.js';
import type { Incarnation, SimHost, World } from './world.js';

const PEER_TIMEOUT_MS = 10_000;

export function sendPeerMessage(w: World, from: SimHost, to: string, kind: PeerMessageKind, message: PeerMessage, inc: Incarnation): Promise<PeerReply> {
  const target = w.hosts.find((h) => h.name === to)!;
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: PeerReply) => {
      if (done || !inc.alive) return;
      done = true;
      resolve(r);
    };
    w.clock.after(PEER_TIMEOUT_MS, () => finish({ peer: to, ok: false, error: `no answer within ${PEER_TIMEOUT_MS} ms` }));
    const deliver = (answerTo: boolean) => {
      const daemon = target.daemon;
      if (!daemon) {
        if (answerTo) finish({ peer: to, ok: false, error: `connect ECONNREFUSED ${to}:9440` });
        return;
      }
      w.note(`net ${from.name}->${to} ${kind} ${message.domain.slice(-2)}`);
      // A migration that ends while the request is being answered may still see it granted
      // (libvirt cannot be asked and acted on at once); the watch then takes ex back.
      const jobOnArrival = target.domains.get(message.domain)?.job === true;
      daemon.coordinator.onPeerMessage(kind, message, from.name).then(
        (answer) => {
          if (!jobOnArrival) checkDemoteAnswer(w, target, kind, message, answer.result, answer.detail);
          if (!answerTo || !daemon.alive || w.prng.chance(w.net.loss)) return;
          w.clock.after(w.prng.range(1, 80), () => finish({ peer: to, ok: true, status: 200, answer }));
        },
        (err: unknown) => answerTo && finish({ peer: to, ok: false, status: 500, error: (err as Error).message }),
      );
    };
    if (!w.prng.chance(w.net.loss)) w.clock.after(w.prng.range(1, 80), () => deliver(true));
    if (w.prng.chance(w.net.dup)) w.clock.after(w.net.staleDup ? w.prng.range(1_000, 90_000) : w.prng.range(1, 200), () => deliver(false));
  });
}

/** Invariant of the handoff: only a domain with an outgoing migration job demotes, and a refusal says nothing of it. */
function checkDemoteAnswer(w: World, target: SimHost, kind: PeerMessageKind, message: PeerMessage, result: string, detail: string): void {
  if (kind !== 'demote' || !w.strictDemote) return;
  const dom = target.domains.get(message.domain);
  if (dom?.job) return;
  if (result === 'demoted') w.violate('demote-without-migration', `${target.name} demoted ${message.domain} for a peer although it has no outgoing migration job`);
  else if (dom && new RegExp(`\\b${dom.guest.name}\\b`).test(detail)) w.violate('demote-refusal-leak', `${target.name} refused a demote with details of its guest: ${detail}`);
}
