import type { KeyedQueue } from '../locks/queue.js';
import type { PeerAnswer, PeerMessage, PeerMessageKind } from '../peers/messages.js';
import { type CoordinatorDeps, type EngineContext, makeContext } from './context.js';
import { LibvirtEvents } from './events.js';
import { Handoff } from './handoff.js';
import { HookGateway, type HookRequest } from './hook-gateway.js';
import { Lifecycle } from './lifecycle.js';
import { MigrationWatch } from './migration-watch.js';
import { PeerNotices } from './notices.js';
import { type ReconcileReport, Reconciler } from './reconcile.js';
import { Transitions } from './transitions.js';

export { HookRefusal, type CoordinatorDeps, type PeerLink } from './context.js';
export type { HookRequest } from './hook-gateway.js';
export type { ReconcileReport } from './reconcile.js';

/**
 * The engine's executors wired together, with plain constructors: the hook gateway, the
 * migration handoff, libvirt events, reconcile, and transitions + audit. Every input of one domain
 * runs on that domain's serial queue; the decisions come from policy.ts.
 */
export class Coordinator {
  readonly queue: KeyedQueue;
  private readonly ctx: EngineContext;
  private readonly lifecycle: Lifecycle;
  private readonly handoff: Handoff;
  private readonly reconciler: Reconciler;
  private readonly events: LibvirtEvents;
  private readonly gateway: HookGateway;

  constructor(deps: CoordinatorDeps) {
    this.ctx = makeContext(deps);
    this.queue = this.ctx.queue;
    const transitions = new Transitions(this.ctx);
    const notices = new PeerNotices(this.ctx);
    this.lifecycle = new Lifecycle(this.ctx, transitions, notices);
    this.handoff = new Handoff(this.ctx, transitions, this.lifecycle);
    const watch = new MigrationWatch(this.ctx, this.lifecycle, this.handoff);
    this.reconciler = new Reconciler(this.ctx, transitions, this.lifecycle, this.handoff, watch);
    watch.requestReconcile = (cause) => this.reconciler.soon(cause);
    this.handoff.onSourceReleased = (cause) => this.reconciler.soon(cause);
    this.events = new LibvirtEvents(this.ctx, transitions, this.lifecycle, this.reconciler, watch);
    this.gateway = new HookGateway(this.ctx, transitions, this.lifecycle, this.handoff, notices, this.reconciler);
  }

  get lastReconcile(): ReconcileReport | undefined {
    return this.reconciler.last;
  }

  hook(req: HookRequest): Promise<string> {
    return this.gateway.hook(req);
  }

  onPeerMessage(kind: PeerMessageKind, msg: PeerMessage, peer: string): Promise<PeerAnswer> {
    return this.handoff.onPeerMessage(kind, msg, peer);
  }

  onDomainEvent(uuid: string, event: number, detail: number): Promise<void> {
    return this.events.onDomainEvent(uuid, event, detail);
  }

  onDeviceAdded(uuid: string, alias: string): Promise<void> {
    return this.events.onDeviceAdded(uuid, alias);
  }

  onDeviceRemoved(uuid: string, alias: string): Promise<void> {
    return this.events.onDeviceRemoved(uuid, alias);
  }

  reconcile(cause: string): Promise<ReconcileReport> {
    return this.reconciler.reconcile(cause);
  }

  reconcileSoon(cause: string): void {
    this.reconciler.soon(cause);
  }

  /** `virt-lvmlockctl migrate-out`: demote before a migration that no peer will ask for. */
  async migrateOut(domain: string): Promise<string> {
    const uuid = this.findDomain(domain);
    const answer = await this.queue.run(uuid, async () => {
      const entry = this.ctx.table.domains.get(uuid);
      if (!entry) return { result: 'not-held', detail: `domain ${domain} holds no locks here` } as PeerAnswer;
      return this.handoff.demote(entry, undefined, 'migrate-out requested by the admin', true);
    });
    if (answer.result !== 'demoted') throw new Error(answer.detail);
    return `${answer.detail}; migrate now: without a migration it takes its exclusive locks back after a while`;
  }

  /** `virt-lvmlockctl settle`: promote or release to match what libvirt says runs here. */
  async settle(domain: string): Promise<string> {
    const uuid = this.findDomain(domain);
    const running = (await this.ctx.deps.libvirt.listActiveDomains()).includes(uuid);
    const job = running ? await this.handoff.migrationJob(uuid) : 'none';
    return this.queue.run(uuid, async () => {
      const entry = this.ctx.table.domains.get(uuid);
      if (!entry) return `domain ${domain} holds no locks here; nothing to settle`;
      if (!running) {
        await this.lifecycle.releaseDomain(entry, 'settle: not running here');
        return `domain ${entry.name} does not run here: ${entry.lastError ?? 'released'}`;
      }
      if (job === 'out' || job === 'in' || job === 'other') {
        throw new Error(`domain ${entry.name} has a job running (a migration?); settle it when the job has ended`);
      }
      await this.lifecycle.toRunning(entry, 'settle requested by the admin');
      return `domain ${entry.name} runs here: ${entry.lastError ? `still refused: ${entry.lastError}` : [...entry.wanted].map(([lv, m]) => `${lv} ${m}`).join(', ')}`;
    });
  }

  private findDomain(domain: string): string {
    const { table } = this.ctx;
    if (table.domains.has(domain.toLowerCase())) return domain.toLowerCase();
    const byName = [...table.domains.values()].filter((e) => e.name === domain);
    if (byName.length === 1) return byName[0].uuid;
    throw new Error(`no domain named or with UUID ${domain} holds locks on this host`);
  }

  stop(): void {
    this.ctx.stopped = true;
    this.lifecycle.cancelAll();
  }
}
