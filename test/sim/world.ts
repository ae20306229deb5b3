/**
 * The simulated cluster: hosts with their libvirt and daemon, the shared lvmlockd, the network,
 * one virtual clock and one PRNG. Every daemon is the real Coordinator with injected I/O.
 */
import type { PeerHost } from '../../src/config/types.js';
import { AuditLog } from '../../src/log/audit.js';
import type { Logger } from '../../src/log/logger.js';
import { Coordinator, HookRefusal, type PeerLink } from '../../src/engine/coordinator.js';
import type { Clock } from '../../src/engine/clock.js';
import type { OwnedLv, OwnedStore } from '../../src/engine/owned.js';
import { DiskResolver } from '../../src/domain/resolver.js';
import { LockTable } from '../../src/locks/table.js';
import { Lvm } from '../../src/lvm/lvm.js';
import { GUESTS, LVS, domainXml, isHotLv, type DiskSpec, type GuestSpec } from './guests.js';
import { LvmCluster, clusterExec } from './lvm-cluster.js';
import { hostOwnedStore } from './hotplug.js';
import { sendPeerMessage } from './network.js';
import { Prng } from './prng.js';
import { Scheduler } from './scheduler.js';

export const HOOK_TIMEOUT_MS = 60_000;
/** How long after a migration ends its hosts may still hold sh while the handoff settles. */
export const HANDOFF_GRACE_MS = 60_000;

export interface Violation {
  invariant: string;
  message: string;
  at: number;
}

/** A domain active in one host's libvirt. */
export interface Dom {
  guest: GuestSpec;
  /** QEMU runs (has the disks open). */
  qemu: boolean;
  state: number;
  reason: number;
  /** A migration job runs (source side). */
  job: boolean;
  /** The destination of its outgoing migration is in Prepare (its hooks run). */
  preparing?: boolean;
  /** Disks hot-plugged into this QEMU; a migration carries them, a stop ends them. */
  hot: DiskSpec[];
}

export interface Incarnation {
  alive: boolean;
  coordinator: Coordinator;
  died: Promise<void>;
  kill: () => void;
}

export interface SimHost {
  id: number;
  name: string;
  domains: Map<string, Dom>;
  /** Gating hooks in progress, per domain UUID, with how many daemon libvirt calls wait on them. */
  hookBusy: Map<string, { done: Promise<void>; blocked: number }>;
  eventsLostUntil: number;
  poolsBroken: boolean;
  daemon?: Incarnation;
  /** LVs the admin activated by hand on this host. */
  adminHeld: Set<string>;
  /** The daemon's record of the LVs it took: in the runtime directory, so it outlives a daemon crash. */
  owned: OwnedStore & { saved: OwnedLv[] };
  /** Hot-plug LVs the daemon's record has named since the admin last activated them here. */
  adopted: Set<string>;
}

export class World {
  readonly clock = new Scheduler();
  readonly prng: Prng;
  readonly lvm: LvmCluster;
  readonly hosts: SimHost[];
  readonly violations: Violation[] = [];
  readonly log: string[] = [];
  /** Per guest UUID: hosts in a live migration handoff, until when (Infinity while it runs). */
  readonly handoffs = new Map<string, { hosts: Set<number>; until: number }>();
  net = { loss: 0, dup: 0, staleDup: false };
  /** Operations in flight (libvirt procedures): must all end once the run settles. */
  inFlight = 0;

  /** Whether the demote handoff checks (hole d) count: only with that fault class enabled. */
  strictDemote = false;

  constructor(seed: number, hostCount: number) {
    this.prng = new Prng(seed);
    const ids = Array.from({ length: hostCount }, (_, i) => i + 1);
    this.lvm = new LvmCluster([{ name: 'vg0', lockType: 'sanlock', lvs: LVS }], ids);
    this.hosts = ids.map((id) => {
      const adopted = new Set<string>();
      return { id, name: `h${id}`, domains: new Map(), hookBusy: new Map(), eventsLostUntil: 0, poolsBroken: false, adminHeld: new Set(), owned: hostOwnedStore(adopted), adopted };
    });
    for (const h of this.hosts) this.startDaemon(h);
  }

  violate(invariant: string, message: string): void {
    this.violations.push({ invariant, message, at: this.clock.now() });
  }

  note(line: string): void {
    if (this.log.length < 4000) this.log.push(`${this.clock.now() - 1_700_000_000_000} ${line}`);
  }

  // ---- daemons ------------------------------------------------------------------------------

  startDaemon(host: SimHost): void {
    const sched = this.clock;
    let kill!: () => void;
    const died = new Promise<void>((resolve) => (kill = resolve));
    const inc = { alive: true, died, kill: () => undefined } as unknown as Incarnation;
    inc.kill = () => {
      inc.alive = false;
      kill();
    };
    const never = <T>() => new Promise<T>(() => undefined);
    const clock: Clock = {
      now: () => sched.now(),
      after: (ms, fn) => sched.after(ms, () => inc.alive && fn()),
      sleep: (ms) => new Promise((resolve) => sched.after(ms, () => inc.alive && resolve())),
    };
    const note = (l: string) => this.note(`${host.name} ${l}`);
    const logger: Logger = {
      error: (m) => note(`ERROR ${m}`),
      warning: (m) => note(`WARN ${m}`),
      notice: (m) => note(`NOTICE ${m}`),
      info: (m) => note(`INFO ${m}`),
      debug: () => undefined,
      setLevel: () => undefined,
      close: () => Promise.resolve(),
    };
    const exec = clusterExec(this.lvm, host.id, sched, (file, args, r) => this.lvmDelay(args, r.rc), {
      alive: () => inc.alive,
      before: (file, args) => this.checkDeactivation(host, args),
    });
    const lvm = new Lvm(() => ({ command: 'lvm', lockctl: 'lvmlockctl', timeoutMs: 30_000, maxParallel: 4 }), exec);
    const resolver = new DiskResolver({ listVgs: () => lvm.listVgs(), resolvePath: (p) => lvm.resolvePath(p) }, () => ({ includeVgs: [], excludeVgs: [] }), logger);
    const call = async <T>(uuid: string | undefined, fn: () => T): Promise<T> => {
      await sched.sleep(this.prng.range(1, 20));
      const busy = uuid ? host.hookBusy.get(uuid) : undefined;
      if (busy) {
        busy.blocked++;
        await busy.done;
        busy.blocked--;
      }
      if (!inc.alive) return never<T>();
      return fn();
    };
    const domain = (uuid: string): Dom => {
      const d = host.domains.get(uuid);
      if (!d) throw new Error(`Domain not found: no domain with matching uuid '${uuid}'`);
      return d;
    };
    const peers: PeerLink = {
      hosts: () => this.hosts.filter((h) => h !== host).map((h): PeerHost => ({ name: h.name, url: `https://${h.name}:9440`, hostId: h.id })),
      send: (peer, kind, message) => sendPeerMessage(this, host, peer.name, kind, message, inc),
    };
    inc.coordinator = new Coordinator({
      lvm,
      libvirt: {
        listActiveDomains: () => call(undefined, () => [...host.domains.keys()]),
        domainXml: (uuid) => call(uuid, () => domainXml(domain(uuid).guest, domain(uuid).hot)),
        storagePools: () =>
          call(undefined, () => {
            if (host.poolsBroken) throw new Error('ListStoragePools: internal error: storage driver not ready');
            return new Map<string, string | null>([['pool0', 'vg0']]);
          }),
        jobActive: (uuid) => call(uuid, () => domain(uuid).job),
        // As seen with libvirt 9.0: while the destination prepares, the source's GetJobStats
        // is held back until Prepare ends.
        migrationJob: async (uuid, waitMs) => {
          const answer = call(uuid, async () => {
            while (domain(uuid).preparing) await sched.sleep(20);
            return domain(uuid).job ? ('out' as const) : ('none' as const);
          });
          if (waitMs === undefined) return answer;
          return Promise.race([answer, sched.sleep(waitMs).then(() => 'busy' as const)]);
        },
        domainState: (uuid) => call(uuid, () => ({ state: domain(uuid).state, reason: domain(uuid).reason })),
      },
      peers,
      migration: () => ({ demoteTimeoutMs: 30_000, promoteGraceMs: 10_000 }),
      resolver,
      table: new LockTable(),
      audit: new AuditLog(logger),
      logger,
      actions: () => ({ prepare: 'exclusive', start: 'none', started: 'none', migrate: 'shared', stopped: 'unlock', release: 'unlock', restore: 'none', reconnect: 'none', attach: 'none' }) as never,
      hookTimeoutMs: () => HOOK_TIMEOUT_MS,
      clock,
      owned: host.owned,
    });
    host.daemon = inc;
    void inc.coordinator.reconcile('startup').catch((err: unknown) => note(`startup reconcile failed: ${(err as Error).message}`));
  }

  /** A call into the host's daemon, given up (undefined) if that daemon dies first; errors count as undefined. */
  whileAlive<T>(host: SimHost, fn: (c: Coordinator) => Promise<T>): Promise<T | undefined> {
    const daemon = host.daemon;
    if (!daemon) return Promise.resolve(undefined);
    return Promise.race([fn(daemon.coordinator).catch(() => undefined), daemon.died.then(() => undefined)]);
  }

  crashDaemon(host: SimHost): void {
    if (!host.daemon) return;
    host.daemon.coordinator.stop();
    host.daemon.kill();
    host.daemon = undefined;
    this.note(`${host.name} daemon crashed`);
  }

  private lvmDelay(args: string[], rc: number): number {
    if (args[0] === 'lvchange' && rc !== 0) return args[1] === '-aey' ? this.prng.range(300, 700) : this.prng.range(5200, 5700);
    return this.prng.range(50, 450);
  }

  /** The daemon must never deactivate an LV a running QEMU has open, nor one the admin activated. */
  private checkDeactivation(host: SimHost, args: string[]): void {
    if (args[0] !== 'lvchange' || args[1] !== '-an') return;
    for (const key of args.slice(2)) {
      if (this.lvm.isOpen(host.id, key)) this.violate('released-in-use', `${host.name}: the daemon ran lvchange -an ${key} while a running QEMU has it open`);
      if (host.adminHeld.has(key)) this.violate('released-admin-lv', `${host.name}: the daemon ran lvchange -an ${key}, which the admin activated outside any domain`);
      else if (isHotLv(key) && !host.adopted.has(key)) this.violate('released-admin-lv', `${host.name}: the daemon ran lvchange -an ${key}, a hot-plug LV it never recorded as its own since the admin activated it`);
    }
  }

  // ---- libvirt side: hooks and events -------------------------------------------------------

  /** A gating hook (libvirt waits); false = refused or the daemon could not answer. */
  async hook(host: SimHost, guest: GuestSpec, op: string, subop = 'begin', hot: readonly DiskSpec[] = []): Promise<boolean> {
    const req = { name: guest.name, op, subop, extra: '-', xml: domainXml(guest, hot) };
    const daemon = host.daemon;
    if (op === 'release') {
      if (daemon) void daemon.coordinator.hook(req).catch(() => undefined);
      return true;
    }
    if (!daemon) {
      this.note(`${host.name} hook ${op} ${guest.name}: daemon not reachable`);
      return false;
    }
    let end!: () => void;
    const busy = { done: new Promise<void>((r) => (end = r)), blocked: 0 };
    host.hookBusy.set(guest.uuid, busy);
    let timedOut = false;
    const verdict = await Promise.race([
      daemon.coordinator.hook(req).then(
        () => true,
        (err: unknown) => {
          this.note(`${host.name} hook ${op} ${guest.name} refused: ${(err as Error).message}`);
          if (!(err instanceof HookRefusal)) this.violate('hook-error', `${host.name}: hook ${op} of ${guest.name} threw a non-refusal: ${(err as Error).message}`);
          return false;
        },
      ),
      daemon.died.then(() => false),
      this.clock.sleep(HOOK_TIMEOUT_MS).then(() => ((timedOut = true), false)),
    ]);
    if (timedOut && busy.blocked > 0) this.violate('no-deadlock', `${host.name}: hook ${op} of ${guest.name} timed out while the daemon waited on a libvirt call about that domain`);
    if (host.hookBusy.get(guest.uuid) === busy) host.hookBusy.delete(guest.uuid);
    end();
    return verdict;
  }

  /** A libvirt-dbus signal: lost while libvirt-dbus restarts or the daemon is down. */
  event(host: SimHost, uuid: string, event: number, detail: number): void {
    this.note(`${host.name} event ${event},${detail} ${uuid.slice(-2)}`);
    if (this.clock.now() < host.eventsLostUntil) return;
    this.clock.after(2, () => void host.daemon?.coordinator.onDomainEvent(uuid, event, detail));
  }

  /** DeviceAdded / DeviceRemoved (the alias), lost like the lifecycle events; the daemon's failure is only logged. */
  deviceEvent(host: SimHost, uuid: string, kind: 'added' | 'removed', alias: string): void {
    this.note(`${host.name} event device ${kind} ${alias} ${uuid.slice(-2)}`);
    if (this.clock.now() < host.eventsLostUntil) return;
    this.clock.after(2, () => {
      const c = host.daemon?.coordinator;
      const handled = kind === 'added' ? c?.onDeviceAdded(uuid, alias) : c?.onDeviceRemoved(uuid, alias);
      void handled?.catch((err: unknown) => this.note(`${host.name} device ${kind} ${alias} failed: ${(err as Error).message}`));
    });
  }

  /** QEMU opens the domain's disks; false (and nothing left open) when one is not active here. */
  openDisks(host: SimHost, guest: GuestSpec, hot: readonly DiskSpec[] = []): boolean {
    const opened: string[] = [];
    for (const d of [...guest.disks, ...hot]) {
      if (!this.lvm.open(host.id, d.lv)) {
        for (const lv of opened) this.lvm.close(host.id, lv);
        this.note(`${host.name} qemu ${guest.name}: cannot open ${d.lv} (not active here)`);
        return false;
      }
      opened.push(d.lv);
    }
    return true;
  }

  closeDisks(host: SimHost, dom: Dom): void {
    for (const d of [...dom.guest.disks, ...dom.hot]) this.lvm.close(host.id, d.lv);
  }

  guest(index: number): GuestSpec {
    return GUESTS[index % GUESTS.length]!;
  }
}
