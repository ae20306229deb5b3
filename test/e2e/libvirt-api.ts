/**
 * The libvirt-dbus calls the tests make on one instance (qemu:///system, /org/libvirt/QEMU), and
 * the DomainEvent signals it emits, kept with their arrival time for timelines.
 */
import * as dbus from '@jellybrick/dbus-next';
import type { BusConnection } from '../../src/dbus/bus.js';

export const QEMU_CONNECTION = '/org/libvirt/QEMU';
const CONNECT = 'org.libvirt.Connect';
const DOMAIN = 'org.libvirt.Domain';

/** virDomainMigrateFlags: LIVE | PEER2PEER | PERSIST_DEST | UNDEFINE_SOURCE (no UNSAFE: block disk, cache='none'). */
export const MIGRATE_FLAGS = 1 | 2 | 8 | 16;
/** VIR_MIGRATE_OFFLINE: only the definition moves; libvirt requires PERSIST_DEST with it. */
export const MIGRATE_OFFLINE = 1024;
/**
 * An offline migration as `virsh migrate --offline --persistent --p2p` makes it: PEER2PEER |
 * PERSIST_DEST | OFFLINE, no UNDEFINE_SOURCE, so a guest running on the source keeps running there.
 */
export const OFFLINE_MIGRATE_FLAGS = 2 | 8 | MIGRATE_OFFLINE;
/** virConnectListAllDomainsFlags ACTIVE. */
export const LIST_ACTIVE = 1;

export interface DomainEventRecord {
  t: number;
  uuid: string;
  event: number;
  detail: number;
}

export const EVENT_NAMES = ['Defined', 'Undefined', 'Started', 'Suspended', 'Resumed', 'Stopped', 'Shutdown', 'PMSuspended', 'Crashed'];

export function domainPath(uuid: string): string {
  return `${QEMU_CONNECTION}/domain/_${uuid.replace(/-/g, '_')}`;
}

export function uuidOfPath(path: string): string {
  const encoded = path.slice(path.lastIndexOf('/_') + 2);
  return encoded.replace(/_/g, '-');
}

export class LibvirtApi {
  readonly events: DomainEventRecord[] = [];

  constructor(
    readonly label: string,
    private readonly bus: BusConnection,
  ) {}

  /** Subscribes to lifecycle events (emitted on the driver path) before anything happens. */
  async subscribe(): Promise<void> {
    this.bus.onSignal((s) => {
      if (s.interface !== CONNECT || s.member !== 'DomainEvent') return;
      const [path, event, detail] = s.body as [string, number, number];
      this.events.push({ t: Date.now(), uuid: uuidOfPath(path), event, detail });
    });
    await this.bus.addMatch(`type='signal',sender='org.libvirt',path='${QEMU_CONNECTION}',interface='${CONNECT}',member='DomainEvent'`, 5000);
  }

  private async call(path: string, iface: string, member: string, signature = '', body: unknown[] = [], timeoutMs = 30_000): Promise<unknown[]> {
    return this.bus.call({ destination: 'org.libvirt', path, interface: iface, member, signature, body }, timeoutMs);
  }

  async listDomains(flags = 0): Promise<string[]> {
    const [paths] = (await this.call(QEMU_CONNECTION, CONNECT, 'ListDomains', 'u', [flags])) as [string[]];
    return paths;
  }

  /** UUIDs of the domains running (or paused) here. */
  async activeDomains(): Promise<string[]> {
    return (await this.listDomains(LIST_ACTIVE)).map(uuidOfPath);
  }

  /** UUIDs of every domain libvirt knows here, defined or running. */
  async allDomains(): Promise<string[]> {
    return (await this.listDomains(0)).map(uuidOfPath);
  }

  async define(xml: string): Promise<string> {
    const [path] = (await this.call(QEMU_CONNECTION, CONNECT, 'DomainDefineXML', 's', [xml])) as [string];
    return path;
  }

  async create(uuid: string): Promise<void> {
    await this.call(domainPath(uuid), DOMAIN, 'Create', 'u', [0], 120_000);
  }

  async destroy(uuid: string): Promise<void> {
    await this.call(domainPath(uuid), DOMAIN, 'Destroy', 'u', [0], 60_000);
  }

  async undefine(uuid: string): Promise<void> {
    await this.call(domainPath(uuid), DOMAIN, 'Undefine', 'u', [0]);
  }

  async xml(uuid: string): Promise<string> {
    const [xml] = (await this.call(domainPath(uuid), DOMAIN, 'GetXMLDesc', 'u', [0])) as [string];
    return xml;
  }

  /** [state, reason] as libvirt's virDomainState and its reason enum. */
  async state(uuid: string): Promise<[number, number]> {
    const [pair] = (await this.call(domainPath(uuid), DOMAIN, 'GetState', 'u', [0])) as [[number, number]];
    return pair;
  }

  /**
   * Live migration, peer to peer: the source libvirtd drives it and reaches the destination's
   * socket by its path (visible from every mount namespace). Bandwidth in MiB/s throttles it.
   */
  async migrateToUri3(uuid: string, destinationUri: string, opts: { bandwidthMiB?: number; flags?: number; timeoutMs?: number } = {}): Promise<void> {
    const params: Record<string, dbus.Variant> = {};
    if (opts.bandwidthMiB !== undefined) params.bandwidth = new dbus.Variant('t', BigInt(opts.bandwidthMiB));
    await this.call(domainPath(uuid), DOMAIN, 'MigrateToURI3', 'sa{sv}u', [destinationUri, params, opts.flags ?? MIGRATE_FLAGS], opts.timeoutMs ?? 300_000);
  }

  async abortJob(uuid: string): Promise<void> {
    await this.call(domainPath(uuid), DOMAIN, 'AbortJob');
  }

  async setMigrationSpeed(uuid: string, mibPerSecond: number): Promise<void> {
    await this.call(domainPath(uuid), DOMAIN, 'MigrateSetMaxSpeed', 'tu', [BigInt(mibPerSecond), 0]);
  }

  async setMigrationDowntime(uuid: string, ms: number): Promise<void> {
    await this.call(domainPath(uuid), DOMAIN, 'MigrateSetMaxDowntime', 'tu', [BigInt(ms), 0]);
  }

  /** virDomainJobType of the running job (0 none, 2 unbounded ...) and its typed stats. */
  async jobType(uuid: string): Promise<number> {
    const [[type]] = (await this.call(domainPath(uuid), DOMAIN, 'GetJobStats', 'u', [0])) as [[number, unknown]];
    return type;
  }
}
