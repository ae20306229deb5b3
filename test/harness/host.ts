import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BusConnection } from '../../src/dbus/bus.js';
import { BUS_NAME } from '../../src/control/names.js';
import { PrivateBus } from './bus.js';
import { LibvirtDbus, TEST_CONNECTION } from './libvirt-dbus.js';
import { CLI_MAIN, DAEMON_MAIN, HOOK_SCRIPT, SIM_BIN } from './paths.js';
import { TestProcess, waitFor } from './process.js';

export interface CommandResult {
  rc: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a program with an argument vector, optional stdin, bounded by a timeout that kills it. */
export function run(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 60_000, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const rc = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 128) : 0;
        resolve({ rc, stdout: String(stdout), stderr: String(stderr), ms: performance.now() - started });
      },
    );
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

export interface HostOptions {
  hostId?: number;
  /** Shared cluster state file: several hosts on one state are hosts sharing the VG. */
  stateFile?: string;
  config?: (paths: { dir: string; runtimeDir: string }) => string;
}

/**
 * One simulated hypervisor for integration tests: a private bus, the real libvirt-dbus on the
 * Test driver, the LVM simulator as this host's lvm, and the built daemon as a child process.
 */
export class TestHost {
  daemon: TestProcess | undefined;
  readonly libvirtDbus: LibvirtDbus;
  client: BusConnection | undefined;

  private constructor(
    readonly dir: string,
    readonly bus: PrivateBus,
    readonly hostId: number,
    readonly stateFile: string,
    readonly configFile: string,
    readonly runtimeDir: string,
    readonly simLog: string,
  ) {
    this.libvirtDbus = new LibvirtDbus(bus.address);
  }

  static async create(options: HostOptions = {}): Promise<TestHost> {
    const dir = await mkdtemp(join(tmpdir(), 'vlt-host-'));
    const bus = await PrivateBus.start();
    const hostId = options.hostId ?? 1;
    const stateFile = options.stateFile ?? join(dir, 'cluster.json');
    const runtimeDir = join(dir, 'run');
    const host = new TestHost(dir, bus, hostId, stateFile, join(dir, 'config.yaml'), runtimeDir, join(dir, 'lvm-sim.log'));
    await host.writeConfig(options.config?.({ dir, runtimeDir }) ?? host.defaultConfig());
    return host;
  }

  get env(): NodeJS.ProcessEnv {
    return {
      LVMSIM_STATE: this.stateFile,
      LVMSIM_HOST_ID: String(this.hostId),
      LVMSIM_LOG: this.simLog,
      VIRT_LVMLOCKD_BUS_ADDRESS: this.bus.address,
      VIRT_LVMLOCKD_RUNTIME_DIR: this.runtimeDir,
    };
  }

  defaultConfig(extra = ''): string {
    return `log:
  level: debug
dbus:
  address: "${this.bus.address}"
libvirt:
  connection: ${TEST_CONNECTION}
  resync_interval: 60s
  call_timeout: 5s
lvm:
  command: ${join(SIM_BIN, 'lvm')}
  lockctl: ${join(SIM_BIN, 'lvmlockctl')}
  timeout: 5s
  max_parallel: 4
hook:
  timeout: 30s
  runtime_dir: ${this.runtimeDir}
${extra}`;
  }

  async writeConfig(text: string): Promise<void> {
    await writeFile(this.configFile, text);
  }

  /** The simulator's admin tool on this host. */
  sim(...args: string[]): Promise<CommandResult> {
    return this.simAs(this.hostId, ...args);
  }

  /** The simulator's admin tool as another host of the same cluster. */
  async simAs(hostId: number, ...args: string[]): Promise<CommandResult> {
    const r = await run(join(SIM_BIN, 'lvm-sim'), args, { env: { ...this.env, LVMSIM_HOST_ID: String(hostId) }, timeoutMs: 20_000 });
    if (r.rc !== 0) throw new Error(`lvm-sim ${args.join(' ')} as host ${hostId} failed (${r.rc}): ${r.stderr}`);
    return r;
  }

  /** lvm as another host of the same cluster (a neighbour taking locks). */
  lvmAs(hostId: number, ...args: string[]): Promise<CommandResult> {
    return run(join(SIM_BIN, 'lvm'), args, { env: { ...this.env, LVMSIM_HOST_ID: String(hostId) }, timeoutMs: 20_000 });
  }

  async lvm(...args: string[]): Promise<CommandResult> {
    return run(join(SIM_BIN, 'lvm'), args, { env: this.env, timeoutMs: 20_000 });
  }

  async startLibvirt(): Promise<void> {
    await this.libvirtDbus.start();
    this.client ??= await BusConnection.connect(this.bus.address, 5000);
    // libvirt-dbus opens its libvirt connection lazily.
    await this.listDomains();
  }

  async startDaemon(): Promise<void> {
    this.daemon = TestProcess.start('virt-lvmlockd', process.execPath, ['--max-semi-space-size=1', DAEMON_MAIN, '--config', this.configFile], this.env);
    this.client ??= await BusConnection.connect(this.bus.address, 5000);
    const client = this.client;
    try {
      await waitFor('org.virtlvmlockd on the bus', async () => {
        if (!this.daemon?.running) throw new Error(`the daemon exited: ${JSON.stringify(await this.daemon?.exited)}`);
        return client.nameOwner(BUS_NAME, 2000);
      }, 20_000, 50);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- daemon output ---\n${this.daemon.text()}`);
    }
  }

  async stopDaemon(): Promise<void> {
    await this.daemon?.stop();
  }

  daemonLog(): string {
    return this.daemon?.text() ?? '';
  }

  async hook(name: string, op: string, subop: string, xml: string, extra = '-'): Promise<CommandResult> {
    return run(HOOK_SCRIPT, [name, op, subop, extra], { env: this.env, input: xml, timeoutMs: 60_000 });
  }

  async cli(...args: string[]): Promise<CommandResult> {
    return run(process.execPath, [CLI_MAIN, ...args], { env: this.env, timeoutMs: 60_000 });
  }

  async status(): Promise<{ locks: Array<{ lv: string; mode: string; domain: string; phase: string }>; domains: Array<{ uuid: string; name: string; phase: string }> }> {
    const r = await this.cli('status', '--json');
    if (r.rc !== 0) throw new Error(`virt-lvmlockctl status failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as Awaited<ReturnType<TestHost['status']>>;
  }

  // ---- libvirt-dbus Test driver -------------------------------------------------------------

  private libvirtCall(path: string, iface: string, member: string, signature = '', body: unknown[] = []): Promise<unknown[]> {
    if (!this.client) throw new Error('startLibvirt() first');
    return this.client.call({ destination: 'org.libvirt', path, interface: iface, member, signature, body }, 10_000);
  }

  async listDomains(): Promise<string[]> {
    const [paths] = (await this.libvirtCall(TEST_CONNECTION, 'org.libvirt.Connect', 'ListDomains', 'u', [1])) as [string[]];
    return paths;
  }

  async createDomain(xml: string): Promise<string> {
    const [path] = (await this.libvirtCall(TEST_CONNECTION, 'org.libvirt.Connect', 'DomainCreateXML', 'su', [xml, 0])) as [string];
    return path;
  }

  domainPath(uuid: string): string {
    return `${TEST_CONNECTION}/domain/_${uuid.replace(/-/g, '_')}`;
  }

  async destroyDomain(uuid: string): Promise<void> {
    await this.libvirtCall(this.domainPath(uuid), 'org.libvirt.Domain', 'Destroy', 'u', [0]);
  }

  async shutdownDomain(uuid: string): Promise<void> {
    await this.libvirtCall(this.domainPath(uuid), 'org.libvirt.Domain', 'Shutdown', 'u', [0]);
  }

  /** What libvirtd does for a start: the prepare hook first (it may refuse), then QEMU. */
  async startDomainWithHook(name: string, xml: string): Promise<CommandResult> {
    const hook = await this.hook(name, 'prepare', 'begin', xml);
    if (hook.rc !== 0) return hook;
    await this.hook(name, 'start', 'begin', xml);
    await this.createDomain(xml);
    await this.hook(name, 'started', 'begin', xml);
    return hook;
  }

  async simLogLines(): Promise<Array<{ host: number; tool: string; argv: string[]; rc: number; startMs: number; endMs: number }>> {
    try {
      const text = await readFile(this.simLog, 'utf8');
      return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { host: number; tool: string; argv: string[]; rc: number; startMs: number; endMs: number });
    } catch {
      return [];
    }
  }

  async dispose(): Promise<void> {
    const errors: unknown[] = [];
    for (const step of [
      () => this.daemon?.stop(),
      () => this.libvirtDbus.stop(),
      () => this.client?.disconnect(),
      () => this.bus.stop(),
      () => rm(this.dir, { recursive: true, force: true }),
    ]) {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length) throw new Error(`cleanup failed: ${errors.map((e) => (e as Error).message).join('; ')}`);
  }
}

export function domainXml(name: string, uuid: string, disks: Array<{ dev: string; shareable?: boolean; readonly?: boolean }>): string {
  const diskXml = disks
    .map(
      (d, i) =>
        `<disk type='block' device='disk'><source dev='${d.dev}'/><target dev='vd${String.fromCharCode(97 + i)}' bus='virtio'/>${d.shareable ? '<shareable/>' : ''}${d.readonly ? '<readonly/>' : ''}</disk>`,
    )
    .join('');
  return `<domain type='test'><name>${name}</name><uuid>${uuid}</uuid><memory>65536</memory><os><type>hvm</type></os><devices>${diskXml}</devices></domain>`;
}
