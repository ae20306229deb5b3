import type { DomainEntry } from '../locks/table.js';
import type { PeerMessageKind } from '../peers/messages.js';
import type { EngineContext } from './context.js';

/**
 * Tells the other host of a migration what happened here. Best effort, retried a few times:
 * safety never depends on these notices arriving, each side also finds out by its own retries.
 */
export class PeerNotices {
  constructor(private readonly ctx: EngineContext) {}

  send(entry: DomainEntry, kind: PeerMessageKind, lvs: string[]): void {
    const link = this.ctx.deps.peers;
    if (!link || lvs.length === 0) return;
    const named = entry.peer ? link.hosts().filter((h) => h.name === entry.peer) : [];
    const targets = named.length ? named : link.hosts();
    const message = { domain: entry.uuid, lvs: [...lvs].sort() };
    const { logger, clock } = this.ctx;
    for (const peer of targets) {
      void (async () => {
        for (let attempt = 0; attempt < 3; attempt++) {
          const reply = await link.send(peer, kind, message);
          if (reply.ok || reply.status === 404) {
            logger.info(`told ${peer.name} ${kind} for domain ${entry.name}: ${reply.answer?.detail ?? reply.error ?? 'ok'}`);
            return;
          }
          await clock.sleep(500 * 2 ** attempt);
        }
        logger.warning(`could not tell ${peer.name} ${kind} for domain ${entry.name}; it will find out by its own retries`);
      })().catch((err: unknown) => logger.error(`telling ${peer.name} ${kind} for domain ${entry.name} failed: ${(err as Error).message}`));
    }
  }
}
