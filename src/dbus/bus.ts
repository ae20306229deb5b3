import * as dbus from '@jellybrick/dbus-next';
import type { Message as DbusMessage, MessageBus } from '@jellybrick/dbus-next';

/**
 * A thin adapter over the D-Bus library, so the rest of the daemon depends on a handful of calls
 * and the library can be swapped. It uses the library's low-level message API only: every call has
 * a timeout (a dead bus leaves calls pending forever otherwise), signals are matched by our own
 * rules, and the death of the connection is reported (the library has no public event for it).
 */

const { Message, MessageType } = dbus;
export type Message = DbusMessage;

export class DbusCallError extends Error {
  constructor(
    message: string,
    readonly errorName: string | undefined,
  ) {
    super(message);
    this.name = 'DbusCallError';
  }
}

export interface CallTarget {
  destination: string;
  path: string;
  interface: string;
  member: string;
  signature?: string;
  body?: unknown[];
}

export interface SignalMessage {
  sender: string;
  path: string;
  interface: string;
  member: string;
  body: unknown[];
}

/** A method handler answers with a body (and its signature) or throws a ServiceError. */
export type MethodHandler = (body: unknown[], sender: string) => Promise<{ signature: string; body: unknown[] }>;

export class ServiceError extends Error {
  constructor(
    readonly errorName: string,
    message: string,
  ) {
    super(message);
  }
}

export function resolveBusAddress(address: string): string {
  if (address === 'system') {
    return process.env.DBUS_SYSTEM_BUS_ADDRESS || 'unix:path=/var/run/dbus/system_bus_socket';
  }
  return address;
}

export class BusConnection {
  private readonly deathHandlers: Array<(reason: string) => void> = [];
  private readonly signalHandlers: Array<(signal: SignalMessage) => void> = [];
  private dead: string | undefined;

  private constructor(private readonly bus: MessageBus) {}

  /** Connects and waits for the Hello reply, bounded by timeoutMs. */
  static async connect(address: string, timeoutMs: number): Promise<BusConnection> {
    const resolved = resolveBusAddress(address);
    const bus = dbus.sessionBus({ busAddress: resolved });
    const connection = new BusConnection(bus);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        bus.once('connect', () => resolve());
        (bus as unknown as NodeJS.EventEmitter).once('error', (err: unknown) => reject(new Error(`cannot connect to D-Bus at ${resolved}: ${errorText(err)}`)));
      }),
      timeoutMs,
      `connecting to D-Bus at ${resolved}`,
    );
    connection.wire();
    return connection;
  }

  get uniqueName(): string {
    return this.bus.name ?? '';
  }

  private wire(): void {
    (this.bus as unknown as NodeJS.EventEmitter).on('error', (err: unknown) => this.die(`D-Bus connection error: ${errorText(err)}`));
    // The library only reports the end of the stream on its private connection object.
    const conn = (this.bus as unknown as { _connection?: { on(event: 'end', fn: () => void): void } })._connection;
    conn?.on('end', () => this.die('D-Bus connection closed by the bus'));
    this.bus.on('message', (msg: DbusMessage) => {
      if (msg.type !== MessageType.SIGNAL) return;
      const signal: SignalMessage = {
        sender: msg.sender ?? '',
        path: msg.path ?? '',
        interface: msg.interface ?? '',
        member: msg.member ?? '',
        body: msg.body ?? [],
      };
      for (const handler of this.signalHandlers) {
        try {
          handler(signal);
        } catch {
          // A listener must never take the connection down; listeners log their own failures.
        }
      }
    });
  }

  private die(reason: string): void {
    if (this.dead) return;
    this.dead = reason;
    for (const handler of this.deathHandlers) handler(reason);
  }

  onDeath(handler: (reason: string) => void): void {
    this.deathHandlers.push(handler);
  }

  onSignal(handler: (signal: SignalMessage) => void): void {
    this.signalHandlers.push(handler);
  }

  async call(target: CallTarget, timeoutMs: number): Promise<unknown[]> {
    if (this.dead) throw new DbusCallError(`D-Bus connection is gone: ${this.dead}`, undefined);
    const msg = new Message({
      destination: target.destination,
      path: target.path,
      interface: target.interface,
      member: target.member,
      signature: target.signature ?? '',
      body: target.body ?? [],
    });
    const what = `${target.destination} ${target.interface}.${target.member} on ${target.path}`;
    let reply: DbusMessage | null;
    try {
      const pending = this.bus.call(msg);
      // The library keeps a reply handler per serial until a reply comes; a callee that never
      // answers would leave one behind for every timed-out call, so it is dropped with the call.
      reply = await withTimeout(pending, timeoutMs, what, () => this.forgetReply(msg.serial));
    } catch (err) {
      // A call that got no answer in time stays recognisable: the callee may just be held up.
      if (err instanceof CallTimeoutError) throw new CallTimeoutError(`${what} failed: ${err.message}`);
      const name = (err as { type?: string }).type;
      const text = (err as { text?: string }).text ?? errorText(err);
      throw new DbusCallError(`${what} failed: ${text}`, name);
    }
    return reply?.body ?? [];
  }

  /** Calls still waiting for their reply (a leak shows here first). */
  get pendingCalls(): number {
    return Object.keys(this.replyHandlers()).length;
  }

  private forgetReply(serial: number | null): void {
    if (serial !== null) delete this.replyHandlers()[serial];
  }

  /** The library's map of reply handlers by serial: it has no public call to cancel one. */
  private replyHandlers(): Record<number, unknown> {
    return (this.bus as unknown as { _methodReturnHandlers?: Record<number, unknown> })._methodReturnHandlers ?? {};
  }

  async addMatch(rule: string, timeoutMs: number): Promise<void> {
    await this.call(
      {
        destination: 'org.freedesktop.DBus',
        path: '/org/freedesktop/DBus',
        interface: 'org.freedesktop.DBus',
        member: 'AddMatch',
        signature: 's',
        body: [rule],
      },
      timeoutMs,
    );
  }

  async nameOwner(name: string, timeoutMs: number): Promise<string | undefined> {
    try {
      const [owner] = await this.call(
        {
          destination: 'org.freedesktop.DBus',
          path: '/org/freedesktop/DBus',
          interface: 'org.freedesktop.DBus',
          member: 'GetNameOwner',
          signature: 's',
          body: [name],
        },
        timeoutMs,
      );
      return typeof owner === 'string' ? owner : undefined;
    } catch (err) {
      if (err instanceof DbusCallError && err.errorName === 'org.freedesktop.DBus.Error.NameHasNoOwner') return undefined;
      throw err;
    }
  }

  /** Owns a well-known name or fails: a second daemon must not silently queue behind the first. */
  async requestName(name: string, timeoutMs: number): Promise<void> {
    const reply = await withTimeout(this.bus.requestName(name, dbus.NameFlag.DO_NOT_QUEUE), timeoutMs, `requesting the D-Bus name ${name}`);
    if (reply !== dbus.RequestNameReply.PRIMARY_OWNER && reply !== dbus.RequestNameReply.ALREADY_OWNER) {
      throw new Error(
        reply === dbus.RequestNameReply.EXISTS
          ? `the D-Bus name ${name} is already owned by another process (is another virt-lvmlockd running?)`
          : `could not own the D-Bus name ${name} (reply ${reply})`,
      );
    }
  }

  /**
   * Serves one object: methods of one interface plus standard introspection. The library's
   * high-level Interface class is avoided on purpose: its configureMembers path is broken in the
   * fork we use, and a plain handler keeps every reply under our control.
   */
  serveObject(path: string, iface: string, introspectionXml: string, methods: Record<string, MethodHandler>): void {
    this.bus.addMethodHandler((msg: DbusMessage) => {
      if (msg.path !== path) return false;
      if (msg.interface === 'org.freedesktop.DBus.Introspectable' && msg.member === 'Introspect') {
        this.bus.send(Message.newMethodReturn(msg, 's', [introspectionXml]));
        return true;
      }
      if (msg.interface !== iface && msg.interface !== undefined) return false;
      const handler = msg.member ? methods[msg.member] : undefined;
      if (!handler) return false;
      const sender = msg.sender ?? '';
      handler(msg.body ?? [], sender).then(
        (result) => this.trySend(Message.newMethodReturn(msg, result.signature, result.body)),
        (err: unknown) => {
          const name = err instanceof ServiceError ? err.errorName : `${iface}.Error.Failed`;
          this.trySend(Message.newError(msg, name, errorText(err)));
        },
      );
      return true;
    });
  }

  private trySend(msg: DbusMessage): void {
    try {
      this.bus.send(msg);
    } catch {
      // The bus is gone; the death handler reports it.
    }
  }

  disconnect(): void {
    this.dead ??= 'disconnected';
    this.bus.disconnect();
  }
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object' && 'text' in err) return String((err as { text: unknown }).text);
  return String(err);
}

/** Races a promise against a timer; onTimeout lets the caller drop what the promise still holds. */
/** A call that got no answer in time; the callee may still be working on it. */
export class CallTimeoutError extends DbusCallError {
  constructor(message: string) {
    super(message, undefined);
    this.name = 'CallTimeoutError';
  }
}

export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new CallTimeoutError(`${what} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
