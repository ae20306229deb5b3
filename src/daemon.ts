import { createRequire } from 'node:module';
import { type Config, hookGatedOps, loadConfig, planReload, type ReloadPlan } from './config/index.js';
import { BusConnection } from './dbus/bus.js';
import { ControlService } from './control/service.js';
import { defaultHookFileRules } from './control/hook-file.js';
import { BUS_NAME } from './control/names.js';
import { Coordinator } from './engine/coordinator.js';
import { DiskResolver } from './domain/resolver.js';
import { writeHookRuntimeFile } from './hook/runtime-file.js';
import { LibvirtClient } from './libvirt/client.js';
import { HolderLookup } from './holders/lookup.js';
import { answerHolding } from './holders/holdings.js';
import { HolderRefusals } from './holders/refusal.js';
import { LivenessReader } from './holders/liveness.js';
import { fileOwnedStore } from './locks/owned-file.js';
import { LockTable } from './locks/table.js';
import { AuditLog } from './log/audit.js';
import type { Logger } from './log/logger.js';
import { Lvm } from './lvm/lvm.js';
import { peerReachable } from './metrics/labels.js';
import type { PrometheusMetrics } from './metrics/prometheus.js';
import { MetricsServer } from './metrics/server.js';
import { runCommand } from './lvm/run.js';
import { PeerClient } from './peers/client.js';
import { PeerServer } from './peers/server.js';
import { loadClientTls, loadServerTls } from './peers/tls.js';

export const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/**
 * The composition root: plain constructors wired in one place. Constructors only store fields;
 * start() does the work in order and owns the D-Bus name last, so systemd (Type=dbus) sees the
 * daemon ready only when events are subscribed and the first reconcile has run.
 */
export class Daemon {
  private config: Config;
  private bus: BusConnection | undefined;
  private coordinator: Coordinator | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = 0;
  private readonly startedAt = Date.now();
  private stopping = false;
  private peerServer: PeerServer | undefined;
  private peerClient: PeerClient | undefined;
  private metricsServer: MetricsServer | undefined;

  constructor(
    private readonly configFile: string,
    initialConfig: Config,
    private readonly logger: Logger,
    private readonly onFatal: (reason: string) => void,
  ) {
    this.config = initialConfig;
  }

  async start(): Promise<void> {
    const cfg = () => this.config;
    const { logger } = this;
    const bus = await BusConnection.connect(cfg().dbus.address, cfg().libvirt.callTimeoutMs);
    this.bus = bus;
    bus.onDeath((reason) => this.onFatal(reason));

    const lvm = new Lvm(() => cfg().lvm);
    const table = new LockTable();
    const resolver = new DiskResolver(lvm, () => cfg().volumes, logger);
    const libvirt = new LibvirtClient(bus, cfg().libvirt.connection, () => cfg().libvirt.callTimeoutMs);
    const peerClient = await this.startPeerClient();
    // Loaded only when metrics are on: a daemon without them does not pay for the library.
    const metrics = cfg().metrics.listen
      ? new (await import('./metrics/prometheus.js')).PrometheusMetrics({ held: () => table.held.values() })
      : undefined;
    const coordinator = new Coordinator({
      lvm,
      libvirt,
      resolver,
      table,
      audit: new AuditLog(logger),
      logger,
      actions: () => cfg().actions,
      hookTimeoutMs: () => cfg().hook.timeoutMs,
      migration: () => cfg().migration,
      owned: fileOwnedStore(cfg().hook.runtimeDir),
      releaseForeign: () => cfg().volumes.releaseForeign,
      peers: peerClient
        ? {
            hosts: () => peerClient.hosts,
            send: async (peer, kind, message) => {
              const reply = await peerClient.send(peer, kind, message);
              metrics?.peerReply(peer.name, peerReachable(reply));
              return reply;
            },
          }
        : undefined,
      metrics,
      holders: new HolderRefusals(
        new HolderLookup({
          run: runCommand,
          lvm: () => cfg().lvm.command,
          sanlock: 'sanlock',
          hosts: () => peerClient?.hosts ?? [],
          holding: peerClient ? (peer, lvs, timeoutMs) => peerClient.holding(peer, lvs, timeoutMs) : undefined,
        }),
        Date.now,
        new LivenessReader(runCommand),
      ),
      waitForDeadHolder: () => cfg().hook.waitForDeadHolder,
    });
    this.coordinator = coordinator;

    libvirt.on('domainEvent', (e) => void coordinator.onDomainEvent(e.uuid, e.event, e.detail));
    libvirt.on('deviceAdded', (e) => void this.guard(`device ${e.alias} added to ${e.uuid}`, coordinator.onDeviceAdded(e.uuid, e.alias)));
    libvirt.on('deviceRemoved', (e) => void this.guard(`device ${e.alias} removed from ${e.uuid}`, coordinator.onDeviceRemoved(e.uuid, e.alias)));
    libvirt.on('ownerChanged', (owner) => {
      logger.warning(`org.libvirt has a new owner (${owner}): events may have been lost; reconciling`);
      void this.resync('libvirt-dbus restarted');
    });
    await libvirt.subscribe();

    const control = new ControlService(
      bus,
      coordinator,
      table,
      logger,
      {
        version: VERSION,
        startedAt: this.startedAt,
        config: this.configFile,
        managedVgs: () => resolver.managedVgs(),
        libvirtOwner: () => libvirt.libvirtOwner,
      },
      { reload: () => this.reload() },
      // The runtime directory changes only with a restart.
      () => defaultHookFileRules(cfg().hook.runtimeDir),
    );
    control.start();

    if (cfg().peers.listen) {
      // The listener presents the server pair; requests present the client pair (startPeerClient).
      const tls = await loadServerTls(cfg().peers.tls);
      const allowed = cfg().peers.allow.length ? cfg().peers.allow : cfg().peers.hosts.map((h) => h.name);
      this.peerServer = new PeerServer(tls, allowed, cfg().peers.hosts, (kind, message, peer) => coordinator.onPeerMessage(kind, message, peer), logger, (query) => answerHolding(table, query));
      await this.peerServer.start(cfg().peers.listen);
    }
    if (metrics) await this.startMetrics(metrics, cfg().metrics!.listen);

    await this.resync('startup');
    await this.publishHookSettings();
    await bus.requestName(BUS_NAME, cfg().libvirt.callTimeoutMs);
    this.scheduleResync();
    logger.notice(`virt-lvmlockd ${VERSION} ready on ${cfg().dbus.address} bus, libvirt connection ${cfg().libvirt.connection}`);
  }

  /**
   * Metrics are for watching the daemon, not part of its job: a port that cannot be bound is
   * reported, and the daemon goes on without them (a scraper sees the target down).
   */
  private async startMetrics(metrics: PrometheusMetrics, listen: string): Promise<void> {
    const server = new MetricsServer(metrics, this.logger);
    try {
      await server.start(listen);
      this.metricsServer = server;
    } catch (err) {
      this.logger.error(`metrics.listen: ${(err as Error).message}; running without metrics`);
    }
  }

  private async startPeerClient(): Promise<PeerClient | undefined> {
    const { peers } = this.config;
    if (peers.hosts.length === 0) return undefined;
    this.peerClient = new PeerClient(await loadClientTls(peers.tls), peers.hosts, () => this.config.peers.requestTimeoutMs);
    return this.peerClient;
  }

  /**
   * A failed reconcile is reported and retried soon, backing off up to the resync interval
   * (libvirt may simply not be up yet at boot); it never stops the daemon.
   */
  private async resync(cause: string): Promise<boolean> {
    try {
      await this.coordinator?.reconcile(cause);
      this.retryDelayMs = 0;
      return true;
    } catch (err) {
      this.retryDelayMs = Math.min(Math.max(this.retryDelayMs * 2, 2000), this.config.libvirt.resyncIntervalMs);
      this.logger.error(`reconcile (${cause}) failed: ${(err as Error).message}; retrying in ${Math.round(this.retryDelayMs / 1000)} s`);
      return false;
    }
  }

  private scheduleResync(): void {
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    if (this.stopping) return;
    const delay = this.retryDelayMs || this.config.libvirt.resyncIntervalMs;
    this.resyncTimer = setTimeout(() => {
      void this.resync(this.retryDelayMs ? 'retry' : 'timer').finally(() => this.scheduleResync());
    }, delay);
  }

  private async guard(what: string, work: Promise<void>): Promise<void> {
    try {
      await work;
    } catch (err) {
      this.logger.error(`${what}: ${(err as Error).message}`);
    }
  }

  private async publishHookSettings(config: Config = this.config): Promise<void> {
    const file = await writeHookRuntimeFile(config.hook.runtimeDir, hookGatedOps(config), config.hook.timeoutMs);
    this.logger.debug(`hook settings published in ${file}: ${hookGatedOps(config).join(' ')}`);
  }

  /** SIGHUP: apply what can change live; an invalid file keeps the old config. */
  async reload(): Promise<string> {
    let next: Config;
    try {
      next = await loadConfig(this.configFile);
    } catch (err) {
      const message = `reload failed, keeping the old configuration: ${(err as Error).message}`;
      this.logger.error(message);
      throw new Error(message);
    }
    // Keys that need a restart keep their old value until then, so the running state stays
    // coherent; the rules relating keys are checked on that merged config, the one that runs.
    let plan: ReloadPlan;
    try {
      plan = planReload(this.config, next, this.configFile);
    } catch (err) {
      const message = `reload failed, keeping the old configuration: ${(err as Error).message}`;
      this.logger.error(message);
      throw new Error(message);
    }
    const { config: merged, change } = plan;
    // The hook must learn the new gated ops before the daemon acts on them, or a start could slip
    // through ungated: publish first, and keep the old config if that fails.
    try {
      await this.publishHookSettings(merged);
    } catch (err) {
      const message = `reload failed, keeping the old configuration: cannot publish the hook settings: ${(err as Error).message}`;
      this.logger.error(message);
      throw new Error(message);
    }
    this.config = merged;
    this.logger.setLevel(merged.log.level);
    this.scheduleResync();
    const parts = [`reloaded ${this.configFile}`];
    parts.push(change.applied.length ? `applied: ${change.applied.join(', ')}` : 'nothing changed that applies live');
    if (change.needRestart.length) parts.push(`need a restart to take effect: ${change.needRestart.join(', ')}`);
    const message = parts.join('; ');
    if (change.needRestart.length) this.logger.warning(message);
    else this.logger.notice(message);
    return message;
  }

  /** Locks are deliberately kept: the guests go on running while the daemon is down. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.coordinator?.stop();
    await this.peerServer?.stop().catch(() => undefined);
    await this.metricsServer?.stop().catch(() => undefined);
    this.peerClient?.close();
    if (this.coordinator) {
      const drained = await Promise.race([
        this.coordinator.queue.drain().then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), 10_000).unref()),
      ]);
      if (!drained) this.logger.warning('stopping with lock operations still in flight after 10 s');
    }
    this.bus?.disconnect();
  }
}
