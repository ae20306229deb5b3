import { EventEmitter } from 'node:events';
import { XMLParser } from 'fast-xml-parser';
import { type BusConnection, CallTimeoutError, type SignalMessage } from '../dbus/bus.js';
import { JobOperation, ListActive, domainPathFromUuid, uuidFromDomainPath } from './enums.js';

const LIBVIRT = 'org.libvirt';
const CONNECT_IFACE = 'org.libvirt.Connect';
const DOMAIN_IFACE = 'org.libvirt.Domain';

export interface DomainEventSignal {
  uuid: string;
  path: string;
  event: number;
  detail: number;
}

export interface DeviceSignal {
  uuid: string;
  path: string;
  alias: string;
}

export interface LibvirtEvents {
  domainEvent: [DomainEventSignal];
  deviceAdded: [DeviceSignal];
  deviceRemoved: [DeviceSignal];
  /** org.libvirt got a new owner (libvirt-dbus restarted): events in the gap are lost. */
  ownerChanged: [string];
}

/**
 * The libvirt-dbus client. libvirt-dbus opens its libvirt connection lazily and never reconnects
 * on its own, so callers must make a call (listDomains) at start, on owner change and on a timer;
 * this class only reports those moments and does the calls, each bounded by the call timeout.
 */
export class LibvirtClient extends EventEmitter<LibvirtEvents> {
  private owner: string | undefined;

  constructor(
    private readonly bus: BusConnection,
    readonly connectionPath: string,
    private readonly callTimeoutMs: () => number,
  ) {
    super();
  }

  async subscribe(): Promise<void> {
    const t = this.callTimeoutMs();
    this.bus.onSignal((s) => this.onSignal(s));
    // Subscribed once for the daemon's life: adding and removing rules per domain leaks them.
    await this.bus.addMatch(
      `type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${LIBVIRT}'`,
      t,
    );
    await this.bus.addMatch(
      `type='signal',sender='${LIBVIRT}',path='${this.connectionPath}',interface='${CONNECT_IFACE}',member='DomainEvent'`,
      t,
    );
    await this.bus.addMatch(
      `type='signal',sender='${LIBVIRT}',interface='${DOMAIN_IFACE}',path_namespace='${this.connectionPath}/domain'`,
      t,
    );
    this.owner = await this.bus.nameOwner(LIBVIRT, t);
  }

  get libvirtOwner(): string | undefined {
    return this.owner;
  }

  private onSignal(s: SignalMessage): void {
    if (s.interface === 'org.freedesktop.DBus' && s.member === 'NameOwnerChanged') {
      if (s.sender !== 'org.freedesktop.DBus') return;
      const [name, , newOwner] = s.body as [string, string, string];
      if (name !== LIBVIRT) return;
      this.owner = newOwner || undefined;
      if (newOwner) this.emit('ownerChanged', newOwner);
      return;
    }
    // Only the current owner of org.libvirt may tell us a domain stopped; anything else could
    // make us release a running guest's lock.
    if (!this.owner || s.sender !== this.owner) return;
    if (s.interface === CONNECT_IFACE && s.member === 'DomainEvent' && s.path === this.connectionPath) {
      const [path, event, detail] = s.body as [string, number, number];
      const uuid = uuidFromDomainPath(path);
      if (uuid) this.emit('domainEvent', { uuid, path, event, detail });
      return;
    }
    if (s.interface === DOMAIN_IFACE && (s.member === 'DeviceAdded' || s.member === 'DeviceRemoved')) {
      const uuid = uuidFromDomainPath(s.path);
      const [alias] = s.body as [string];
      if (!uuid || typeof alias !== 'string') return;
      this.emit(s.member === 'DeviceAdded' ? 'deviceAdded' : 'deviceRemoved', { uuid, path: s.path, alias });
    }
  }

  private call(path: string, iface: string, member: string, signature = '', body: unknown[] = []): Promise<unknown[]> {
    return this.bus.call(
      { destination: LIBVIRT, path, interface: iface, member, signature, body },
      this.callTimeoutMs(),
    );
  }

  /** UUIDs of the active domains. Also (re)opens libvirt-dbus's lazy libvirt connection. */
  async listActiveDomains(): Promise<string[]> {
    const [paths] = (await this.call(this.connectionPath, CONNECT_IFACE, 'ListDomains', 'u', [ListActive])) as [string[]];
    return paths.map((p) => uuidFromDomainPath(p)).filter((u): u is string => u !== undefined);
  }

  domainPath(uuid: string): string {
    return domainPathFromUuid(this.connectionPath, uuid);
  }

  async domainXml(uuid: string): Promise<string> {
    const [xml] = (await this.call(this.domainPath(uuid), DOMAIN_IFACE, 'GetXMLDesc', 'u', [0])) as [string];
    return xml;
  }

  async domainState(uuid: string): Promise<{ state: number; reason: number }> {
    const [pair] = (await this.call(this.domainPath(uuid), DOMAIN_IFACE, 'GetState', 'u', [0])) as [[number, number]];
    return { state: pair[0], reason: pair[1] };
  }

  /** Whether a job (a migration, on the source) is running on the domain: GetJobStats type is not NONE. */
  async jobActive(uuid: string): Promise<boolean> {
    const [reply] = (await this.call(this.domainPath(uuid), DOMAIN_IFACE, 'GetJobStats', 'u', [0])) as [[number, unknown]];
    return reply[0] !== 0;
  }

  /**
   * Which job runs on the domain: a migration out or in (GetJobStats' "operation"), another job,
   * or none. A driver that reports a job without its operation counts as "other". With `waitMs`,
   * a call still unanswered by then is "busy": libvirt makes GetJobStats wait while a job that
   * allows no queries holds the domain, as the source's migration job does while the
   * destination prepares (seen with libvirt 9.0).
   */
  async migrationJob(uuid: string, waitMs?: number): Promise<'out' | 'in' | 'other' | 'none' | 'busy'> {
    let reply: [number, Record<string, unknown>];
    try {
      [reply] = (await this.bus.call(
        { destination: LIBVIRT, path: this.domainPath(uuid), interface: DOMAIN_IFACE, member: 'GetJobStats', signature: 'u', body: [0] },
        waitMs ?? this.callTimeoutMs(),
      )) as [[number, Record<string, unknown>]];
    } catch (err) {
      if (waitMs !== undefined && err instanceof CallTimeoutError) return 'busy';
      throw err;
    }
    if (reply[0] === 0) return 'none';
    // libvirt-dbus sends each typed parameter as a variant, which dbus-next may nest.
    let operation: unknown = reply[1]?.operation;
    while (typeof operation === 'object' && operation !== null && 'value' in operation) operation = (operation as { value: unknown }).value;
    if (operation === JobOperation.MigrationOut) return 'out';
    if (operation === JobOperation.MigrationIn) return 'in';
    return 'other';
  }

  /** Every storage pool: the VG behind a logical pool, null for other types; for `<disk type='volume'>`. */
  async storagePools(): Promise<Map<string, string | null>> {
    const pools = new Map<string, string | null>();
    const [paths] = (await this.call(this.connectionPath, CONNECT_IFACE, 'ListStoragePools', 'u', [0])) as [string[]];
    for (const path of paths) {
      const [xml] = (await this.call(path, 'org.libvirt.StoragePool', 'GetXMLDesc', 'u', [0])) as [string];
      const parsed = parsePool(xml);
      if (parsed) pools.set(parsed.pool, parsed.vg);
    }
    return pools;
  }
}

/** Just enough of a pool's XML: its name and, for logical pools, the VG name (source name, else pool name). */
export function parsePool(xml: string): { pool: string; vg: string | null } | undefined {
  let doc: { pool?: { '@_type'?: string; name?: unknown; source?: { name?: unknown } } };
  try {
    doc = poolParser.parse(xml) as typeof doc;
  } catch {
    return undefined;
  }
  const pool = doc.pool;
  if (!pool || typeof pool.name !== 'string') return undefined;
  if (pool['@_type'] !== 'logical') return { pool: pool.name, vg: null };
  const vg = typeof pool.source?.name === 'string' && pool.source.name ? pool.source.name : pool.name;
  return { pool: pool.name, vg };
}

const poolParser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', parseTagValue: false, trimValues: true });
