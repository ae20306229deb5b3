import { DomainState } from '../libvirt/enums.js';
import type { EngineContext } from './context.js';
import type { Lifecycle } from './lifecycle.js';

/**
 * A start whose Started event was lost (libvirt-dbus renews its event subscriptions only at its
 * next call after a libvirtd restart) stays 'starting', and a peer's demote request for it would
 * be refused. libvirt's state, which it answers without waiting for a migration's job, settles
 * it: running means the start is over. Called outside the domain's queue.
 */
export async function settleLostStart(ctx: EngineContext, lifecycle: Lifecycle, uuid: string): Promise<void> {
  let running = false;
  try {
    running = (await ctx.deps.libvirt.domainState(uuid)).state === DomainState.Running;
  } catch (err) {
    ctx.logger.info(`cannot read the state of domain ${uuid}: ${(err as Error).message}`);
  }
  if (!running) return;
  await ctx.queue.run(uuid, async () => {
    const entry = ctx.table.domains.get(uuid);
    if (entry?.phase === 'starting') {
      ctx.logger.warning(`domain ${entry.name}: its Started event was lost; libvirt says it runs`);
      lifecycle.setPhase(entry, 'running');
    }
  });
}
