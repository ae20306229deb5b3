import { type BusConnection, ServiceError } from '../dbus/bus.js';
import { HookRefusal, type Coordinator, type HookRequest } from '../engine/coordinator.js';
import type { LockTable } from '../locks/table.js';
import { publishedHookRuntimeDir } from '../hook/runtime-file.js';
import type { Logger } from '../log/logger.js';
import { defaultHookFileRules, type HookFileRules, readHookFile } from './hook-file.js';
import { ERROR_FAILED, ERROR_REFUSED, INTROSPECTION_XML, MANAGER_IFACE, OBJECT_PATH } from './names.js';

export interface StatusSource {
  version: string;
  startedAt: number;
  config: string;
  managedVgs: () => string[];
  libvirtOwner: () => string | undefined;
}

export interface ControlActions {
  reload: () => Promise<string>;
}

/** The daemon's own D-Bus object: the hook gateway, status, reconcile and reload. */
export class ControlService {
  constructor(
    private readonly bus: BusConnection,
    private readonly coordinator: Coordinator,
    private readonly table: LockTable,
    private readonly logger: Logger,
    private readonly source: StatusSource,
    private readonly actions: ControlActions,
    /** Where hook files may come from; by default the runtime directory the hook settings went to. */
    private readonly hookFileRules: () => HookFileRules | undefined = () => {
      const dir = publishedHookRuntimeDir();
      return dir === undefined ? undefined : defaultHookFileRules(dir);
    },
  ) {}

  start(): void {
    this.bus.serveObject(OBJECT_PATH, MANAGER_IFACE, INTROSPECTION_XML, {
      Hook: (body) => this.hook(body),
      HookFile: (body) => this.hookFile(body),
      Status: async () => ({ signature: 's', body: [JSON.stringify(this.status())] }),
      Reconcile: async () => {
        try {
          const report = await this.coordinator.reconcile('requested over D-Bus');
          return { signature: 's', body: [JSON.stringify(report)] };
        } catch (err) {
          throw new ServiceError(ERROR_FAILED, `reconcile failed: ${(err as Error).message}`);
        }
      },
      MigrateOut: (body) => this.domainCommand('migrate-out', body, (d) => this.coordinator.migrateOut(d)),
      Settle: (body) => this.domainCommand('settle', body, (d) => this.coordinator.settle(d)),
      Reload: async () => {
        try {
          return { signature: 's', body: [await this.actions.reload()] };
        } catch (err) {
          throw new ServiceError(ERROR_FAILED, (err as Error).message);
        }
      },
    });
  }

  private async domainCommand(what: string, body: unknown[], run: (domain: string) => Promise<string>): Promise<{ signature: string; body: unknown[] }> {
    const domain = typeof body[0] === 'string' ? body[0] : '';
    try {
      const result = await run(domain);
      this.logger.notice(`${what} ${domain}: ${result}`);
      return { signature: 's', body: [result] };
    } catch (err) {
      this.logger.error(`${what} ${domain} failed: ${(err as Error).message}`);
      throw new ServiceError(ERROR_FAILED, `${what} ${domain}: ${(err as Error).message}`);
    }
  }

  /** The hook with XML too large for one argument: the same call, the XML in a file. */
  private async hookFile(body: unknown[]): Promise<{ signature: string; body: unknown[] }> {
    const [name, op, subop, extra, path] = body.map((v) => (typeof v === 'string' ? v : ''));
    const rules = this.hookFileRules();
    let xml: string;
    try {
      if (!rules) throw new Error('the daemon has not published its runtime directory yet');
      xml = await readHookFile(path, rules);
    } catch (err) {
      const message = `cannot read the domain XML of ${name || 'an unnamed domain'} for ${op}: ${(err as Error).message}`;
      this.logger.error(`hook ${op} ${subop} of ${name}: refused: ${message}`);
      throw new ServiceError(ERROR_REFUSED, `virt-lvmlockd: ${message}`);
    }
    return this.hook([name, op, subop, extra, xml]);
  }

  private async hook(body: unknown[]): Promise<{ signature: string; body: unknown[] }> {
    const [name, op, subop, extra, xml] = body.map((v) => (typeof v === 'string' ? v : ''));
    const req: HookRequest = { name, op, subop, extra, xml };
    const started = performance.now();
    try {
      const result = await this.coordinator.hook(req);
      this.logger.info(`hook ${op} ${subop} of ${name}: allowed (${result}) in ${Math.round(performance.now() - started)} ms`);
      return { signature: 's', body: [result] };
    } catch (err) {
      const message = err instanceof HookRefusal ? err.message : `internal error while handling ${op} of ${name}: ${(err as Error).message}`;
      this.logger.error(`hook ${op} ${subop} of ${name}: refused: ${message}`);
      // The hook shows this line to the user as it is; the prefix tells it from bus errors.
      throw new ServiceError(ERROR_REFUSED, `virt-lvmlockd: ${message}`);
    }
  }

  status(): object {
    return {
      version: this.source.version,
      startedAt: new Date(this.source.startedAt).toISOString(),
      config: this.source.config,
      libvirt: { owner: this.source.libvirtOwner() ?? null },
      memory: memoryFigures(),
      managedVgs: this.source.managedVgs(),
      locks: this.table.status(),
      domains: [...this.table.domains.values()].map((d) => ({
        uuid: d.uuid,
        name: d.name,
        phase: d.phase,
        since: new Date(d.since).toISOString(),
        lvs: Object.fromEntries(d.wanted),
        peer: d.peer ?? null,
        lastError: d.lastError ?? null,
      })),
      lastReconcile: this.coordinator.lastReconcile ?? null,
    };
  }
}

function memoryFigures(): { rssMB: number; heapUsedMB: number; heapTotalMB: number } {
  const m = process.memoryUsage();
  const mb = (n: number) => Math.round((n / 1048576) * 10) / 10;
  return { rssMB: mb(m.rss), heapUsedMB: mb(m.heapUsed), heapTotalMB: mb(m.heapTotal) };
}
