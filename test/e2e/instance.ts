/**
 * One isolated system-mode libvirtd "host" of the end-to-end cluster:
 *
 * - its own mount + UTS namespace (InstanceNamespace) inside the shared network namespace, with
 *   its own hostname and host_uuid (libvirt refuses to migrate to "itself");
 * - its own dbus-daemon, bind-mounted onto /run/dbus/system_bus_socket in the namespace, so
 *   libvirtd, libvirt-dbus --system, the daemon under test, its CLI and the hook all use "the
 *   system bus" with no address override;
 * - bind mounts of its own directories on /etc/libvirt, /run/libvirt, /var/lib/libvirt,
 *   /var/log/libvirt, /var/cache/libvirt, /etc/hosts and /run/virt-lvmlockd;
 * - a private /dev in which /dev/vg0/lvN are symlinks to the shared loop device;
 * - the hooks qemu.d/00-log (timeline) and qemu.d/virt-lvmlockd (the real hook), in place before
 *   libvirtd starts (libvirtd only looks for hooks at start);
 * - libvirtd under a subreaper, libvirt-dbus, and the daemon under test.
 */
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StatusJson } from '../../src/cli/format.js';
import { BUS_NAME } from '../../src/control/names.js';
import { BusConnection } from '../../src/dbus/bus.js';
import { PrivateBus } from '../harness/bus.js';
import { CLI_MAIN, DAEMON_MAIN, HOOK_SCRIPT, ROOT } from '../harness/paths.js';
import { TestProcess, waitFor } from '../harness/process.js';
import { HOOK_RUNTIME_DIR } from './daemon-config.js';
import { type CommandResult, attempt } from './exec.js';
import { LibvirtApi } from './libvirt-api.js';
import { InstanceNamespace } from './namespace.js';

export const SUBREAPER = join(ROOT, 'test/e2e/subreaper.sh');

export interface InstanceSpec {
  /** Instance and certificate name: "src", "dst". */
  name: string;
  /** lvmlockd/sanlock host_id of this host in the simulator. */
  hostId: number;
  hostname: string;
  hostUuid: string;
  /** TEST-NET-1 address on lo in the shared network namespace: migration and peer traffic. */
  ip: string;
  migrationPorts: [number, number];
}

export interface InstanceEnvironment {
  baseDir: string;
  netns: string;
  /** /dev/VG/LV path inside the namespace -> device it points at. */
  lvLinks: Record<string, string>;
  stateFile: string;
  /** Kept between runs: libvirtd's QEMU capability probe takes about 10 s when it is empty. */
  cacheDir: string;
  subreaper: boolean;
}

export interface HookCall {
  t: number;
  domain: string;
  op: string;
  subop: string;
  extra: string;
}

/** Mount points inside the namespace, all of them existing directories or files on the host. */
export const INSTANCE_MOUNT_POINTS = ['/etc/libvirt', '/run/libvirt', '/var/lib/libvirt', '/var/log/libvirt', '/var/cache/libvirt', '/run/dbus', HOOK_RUNTIME_DIR];

export class Instance {
  readonly dir: string;
  readonly runDir: string;
  readonly hooksLog: string;
  readonly simLog: string;
  readonly configFile: string;
  private ns: InstanceNamespace | undefined;
  private bus: PrivateBus | undefined;
  private client: BusConnection | undefined;
  private libvirtd: TestProcess | undefined;
  private libvirtDbus: TestProcess | undefined;
  private daemon: TestProcess | undefined;
  /** Output of earlier runs of the daemon (before a restart), for failure messages. */
  private readonly pastDaemonOutput: string[] = [];
  private api: LibvirtApi | undefined;

  constructor(
    readonly spec: InstanceSpec,
    private readonly env: InstanceEnvironment,
  ) {
    this.dir = join(env.baseDir, spec.name);
    this.runDir = join(this.dir, 'run');
    this.hooksLog = join(this.dir, 'hooks.log');
    this.simLog = join(this.dir, 'lvm-sim.log');
    this.configFile = join(this.dir, 'virt-lvmlockd.yaml');
  }

  get name(): string {
    return this.spec.name;
  }

  get hostId(): number {
    return this.spec.hostId;
  }

  /** The instance's bus, from the root namespace. */
  get busAddress(): string {
    if (!this.bus) throw new Error(`instance ${this.name} is not started`);
    return this.bus.address;
  }

  /** Where another libvirtd reaches this one (the path is the same from every namespace). */
  get libvirtUri(): string {
    return `qemu+unix:///system?socket=${join(this.runDir, 'libvirt-sock')}`;
  }

  get libvirt(): LibvirtApi {
    if (!this.api) throw new Error(`instance ${this.name} is not started`);
    return this.api;
  }

  get namespace(): InstanceNamespace {
    if (!this.ns) throw new Error(`instance ${this.name} is not started`);
    return this.ns;
  }

  // ---- start ---------------------------------------------------------------------------------

  async start(): Promise<void> {
    await this.writeFiles();
    this.bus = await PrivateBus.start();
    this.ns = await InstanceNamespace.create(this.name, this.env.netns);
    await this.mountAll();
    await this.startLibvirtd();
    await this.startLibvirtDbus();
  }

  private async writeFiles(): Promise<void> {
    const { spec, dir } = this;
    for (const sub of ['etc/hooks/qemu.d', 'run', 'lib/qemu', 'lib/images', 'log/qemu', 'vlrun', 'devov']) {
      await mkdir(join(dir, sub), { recursive: true });
    }
    await mkdir(this.env.cacheDir, { recursive: true });
    await writeFile(
      join(dir, 'etc/libvirtd.conf'),
      [
        'listen_tls = 0',
        'listen_tcp = 0',
        'unix_sock_group = "root"',
        'unix_sock_ro_perms = "0777"',
        'unix_sock_rw_perms = "0770"',
        'auth_unix_ro = "none"',
        'auth_unix_rw = "none"',
        `host_uuid = "${spec.hostUuid}"`,
        'log_filters = "1:qemu.qemu_migration 1:qemu.qemu_process 3:util 3:rpc 3:event"',
        `log_outputs = "3:file:${join(dir, 'log/libvirtd.log')}"`,
        '',
      ].join('\n'),
    );
    await writeFile(
      join(dir, 'etc/qemu.conf'),
      [
        'user = "root"',
        'group = "root"',
        'dynamic_ownership = 0',
        'remember_owner = 0',
        'security_driver = "none"',
        // No per-domain /dev: QEMU must see the namespace's /dev/vg0/lvN symlinks as they are.
        'namespaces = [ ]',
        'cgroup_controllers = [ ]',
        // No virtlogd to start and share between instances.
        'stdio_handler = "file"',
        `migration_address = "${spec.ip}"`,
        `migration_host = "${spec.ip}"`,
        `migration_port_min = ${spec.migrationPorts[0]}`,
        `migration_port_max = ${spec.migrationPorts[1]}`,
        '',
      ].join('\n'),
    );
    await writeFile(join(dir, 'etc/libvirt.conf'), '');
    // Without its own /etc/hosts every virGetHostname() waits for a DNS timeout in the netns.
    await writeFile(join(dir, 'hosts'), `127.0.0.1 localhost\n${spec.ip} ${spec.hostname}\n`);
    await writeFile(this.hooksLog, '');
    await this.installHooks();
  }

  private hookPath(name: string): string {
    return join(this.dir, 'etc/hooks/qemu.d', name);
  }

  /** qemu.d runs in name order: the timeline logger first, then the real hook. */
  private async installHooks(): Promise<void> {
    await writeFile(
      this.hookPath('00-log'),
      [
        '#!/bin/sh',
        '# Test timeline: one line per hook call, "<epoch seconds> <argv>". Nothing on stdout: for',
        '# "migrate" libvirt would take it as the new domain XML.',
        `printf '%s %s\\n' "$(date +%s.%N)" "$*" >> '${this.hooksLog}'`,
        'exec cat > /dev/null',
        '',
      ].join('\n'),
    );
    await chmod(this.hookPath('00-log'), 0o755);
    await this.setHookForwarding(true);
  }

  /**
   * Installs the project's hook, or in its place one that tells the daemon nothing: then only
   * libvirt's events reach the daemon (libvirtd re-reads a hook's content at every call).
   */
  async setHookForwarding(enabled: boolean): Promise<void> {
    const path = this.hookPath('virt-lvmlockd');
    if (enabled) {
      await copyFile(HOOK_SCRIPT, path);
    } else {
      await writeFile(path, '#!/bin/sh\n# virt-lvmlockd hook disabled by the test: the daemon hears only events.\nexec cat > /dev/null\n');
    }
    await chmod(path, 0o755);
  }

  private async mountAll(): Promise<void> {
    const ns = this.namespace;
    const { dir } = this;
    await ns.bind(join(dir, 'etc'), '/etc/libvirt');
    await ns.bind(join(dir, 'run'), '/run/libvirt');
    await ns.bind(join(dir, 'lib'), '/var/lib/libvirt');
    await ns.bind(join(dir, 'log'), '/var/log/libvirt');
    await ns.bind(this.env.cacheDir, '/var/cache/libvirt');
    await ns.bind(join(dir, 'hosts'), '/etc/hosts');
    await ns.bind(join(dir, 'vlrun'), HOOK_RUNTIME_DIR);
    // The private bus as the system bus: a tmpfs hides the host's /run/dbus, and the bus socket is
    // bound onto the well-known name in it.
    await ns.exec('mount', ['-t', 'tmpfs', '-o', 'mode=755,size=64k', 'tmpfs', '/run/dbus']);
    await ns.exec('touch', ['/run/dbus/system_bus_socket']);
    await ns.bind(this.busAddress.replace(/^unix:path=/, ''), '/run/dbus/system_bus_socket');
    await ns.privateDev(join(dir, 'devov'));
    for (const [path, device] of Object.entries(this.env.lvLinks)) await ns.symlink(device, path);
    await ns.setHostname(this.spec.hostname);
  }

  private async startLibvirtd(): Promise<void> {
    const args = ['--config', join(this.dir, 'etc/libvirtd.conf'), '--pid-file', join(this.runDir, 'libvirtd.pid')];
    this.libvirtd = this.env.subreaper
      ? this.namespace.spawn(`${this.name} libvirtd`, 'sh', [SUBREAPER, 'libvirtd', ...args])
      : this.namespace.spawn(`${this.name} libvirtd`, 'libvirtd', args);
    const socket = join(this.runDir, 'libvirt-sock');
    const proc = this.libvirtd;
    try {
      await waitFor(`${this.name} libvirtd's socket ${socket}`, () => {
        if (!proc.running) throw new Error(`libvirtd exited: ${proc.text()}`);
        return existsSync(socket);
      }, 120_000, 100);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await this.libvirtdLogTail()}`);
    }
  }

  private async startLibvirtDbus(): Promise<void> {
    this.libvirtDbus = this.namespace.spawn(`${this.name} libvirt-dbus`, 'libvirt-dbus', ['--system']);
    this.client = await BusConnection.connect(this.busAddress, 5000);
    const client = this.client;
    const proc = this.libvirtDbus;
    await waitFor(`org.libvirt on ${this.name}'s bus`, async () => {
      if (!proc.running) throw new Error(`libvirt-dbus exited: ${proc.text()}`);
      return client.nameOwner('org.libvirt', 2000);
    }, 20_000, 100);
    this.api = new LibvirtApi(this.name, client);
    await this.api.subscribe();
    // libvirt-dbus opens its libvirt connection (and registers for events) at the first call.
    await this.api.listDomains();
  }

  // ---- the daemon under test -----------------------------------------------------------------

  async writeDaemonConfig(text: string): Promise<void> {
    await writeFile(this.configFile, text);
  }

  get daemonRunning(): boolean {
    return this.daemon?.running ?? false;
  }

  /** Starts `node dist/src/main.js --config FILE` inside the namespaces; waits for its bus name. */
  async startDaemon(): Promise<void> {
    if (this.daemon?.running) throw new Error(`the daemon of ${this.name} is already running`);
    if (this.daemon) this.pastDaemonOutput.push(this.daemon.text());
    const daemon = this.namespace.spawn(`${this.name} virt-lvmlockd`, process.execPath, [DAEMON_MAIN, '--config', this.configFile], {
      LVMSIM_STATE: this.env.stateFile,
      LVMSIM_HOST_ID: String(this.hostId),
      LVMSIM_LOG: this.simLog,
      // Plain timestamped lines, not journald's priority prefixes.
      JOURNAL_STREAM: undefined,
    });
    this.daemon = daemon;
    const client = this.client;
    if (!client) throw new Error(`instance ${this.name} is not started`);
    try {
      await waitFor(`${BUS_NAME} on ${this.name}'s bus`, async () => {
        if (!daemon.running) throw new Error(`the daemon exited: ${JSON.stringify(await daemon.exited)}`);
        return client.nameOwner(BUS_NAME, 2000);
      }, 60_000, 50);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- ${this.name} daemon output ---\n${daemon.text()}`);
    }
  }

  /** SIGTERM (then SIGKILL after 10 s); the locks stay, as with a real daemon stop. */
  async stopDaemon(): Promise<void> {
    await this.daemon?.stop(10_000);
  }

  async restartDaemon(): Promise<void> {
    await this.stopDaemon();
    await this.startDaemon();
  }

  daemonOutput(): string {
    return [...this.pastDaemonOutput, this.daemon?.text() ?? ''].join('\n--- (daemon restarted) ---\n');
  }

  /** `virt-lvmlockctl status --json`, from outside, through the instance's bus socket. */
  async status(): Promise<StatusJson> {
    const r = await attempt(process.execPath, [CLI_MAIN, 'status', '--json'], { env: { VIRT_LVMLOCKD_BUS_ADDRESS: this.busAddress }, timeoutMs: 20_000 });
    if (r.rc !== 0) throw new Error(`virt-lvmlockctl status on ${this.name} failed (${r.rc}): ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as StatusJson;
  }

  /** The CLI run inside the namespace, where it finds the daemon on "the system bus". */
  cliInside(...args: string[]): Promise<CommandResult> {
    return this.namespace.exec(process.execPath, [CLI_MAIN, ...args], { timeoutMs: 20_000 });
  }

  // ---- guests ----------------------------------------------------------------------------------

  async hookCalls(): Promise<HookCall[]> {
    const text = await readFile(this.hooksLog, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [t, domain = '', op = '', subop = '', extra = ''] = line.split(' ');
        return { t: Math.round(Number(t) * 1000), domain, op, subop, extra };
      });
  }

  /** PID of a guest's QEMU from libvirt's pid file, checked to really be a QEMU we started. */
  async qemuPid(domainName: string): Promise<number | undefined> {
    const text = await readFile(join(this.runDir, 'qemu', `${domainName}.pid`), 'utf8').catch(() => '');
    const pid = Number(text.trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    return cmdline.includes('qemu') && cmdline.includes(domainName) ? pid : undefined;
  }

  async killQemu(domainName: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<number> {
    const pid = await this.qemuPid(domainName);
    if (pid === undefined) throw new Error(`no QEMU of ${domainName} runs on ${this.name}`);
    process.kill(pid, signal);
    return pid;
  }

  /** Takes /dev/VG/LV away inside this instance only (the host lacks the disk). */
  async removeLvLink(path: string): Promise<void> {
    await this.namespace.remove(path);
  }

  async restoreLvLink(path: string): Promise<void> {
    const device = this.env.lvLinks[path];
    if (!device) throw new Error(`${path} is not one of the LV links of ${this.name}`);
    await this.namespace.symlink(device, path);
  }

  // ---- diagnostics -------------------------------------------------------------------------------

  async libvirtdLogTail(lines = 40): Promise<string> {
    const log = await readFile(join(this.dir, 'log/libvirtd.log'), 'utf8').catch(() => '');
    const errors = log.split('\n').filter((l) => /error|warning/i.test(l)).slice(-lines);
    return `--- ${this.name} libvirtd output ---\n${this.libvirtd?.text() ?? ''}\n--- ${this.name} libvirtd.log errors and warnings ---\n${errors.join('\n')}`;
  }

  // ---- stop --------------------------------------------------------------------------------------

  /**
   * Stops what this instance started, each step attempted whatever the others did: guests (by
   * libvirt, then any QEMU left by its pid file), the daemon, libvirt-dbus, libvirtd, the
   * namespace holder, the bus. Returns the problems met.
   */
  async stop(): Promise<string[]> {
    const problems: string[] = [];
    const step = async (what: string, work: () => Promise<unknown>) => {
      try {
        await work();
      } catch (err) {
        problems.push(`${this.name}: ${what}: ${(err as Error).message}`);
      }
    };
    if (this.api && this.libvirtDbus?.running) {
      await step('destroying guests', async () => {
        for (const uuid of await this.api!.activeDomains()) await this.api!.destroy(uuid).catch(() => undefined);
      });
    }
    await step('killing leftover QEMU', () => this.killLeftoverQemu());
    await step('stopping the daemon', () => this.stopDaemon());
    await step('stopping libvirt-dbus', async () => this.libvirtDbus?.stop());
    await step('disconnecting', async () => this.client?.disconnect());
    await step('stopping libvirtd', async () => this.libvirtd?.stop(15_000));
    await step('stopping the namespace', async () => this.ns?.stop());
    await step('stopping the bus', async () => this.bus?.stop());
    return problems;
  }

  private async killLeftoverQemu(): Promise<void> {
    const { readdir } = await import('node:fs/promises');
    const dir = join(this.runDir, 'qemu');
    for (const file of await readdir(dir).catch(() => [] as string[])) {
      if (!file.endsWith('.pid')) continue;
      const pid = await this.qemuPid(file.slice(0, -'.pid'.length));
      if (pid === undefined) continue;
      process.kill(pid, 'SIGKILL');
      await waitFor(`QEMU ${pid} to exit`, async () => !existsSync(`/proc/${pid}`) || /\) Z /.test(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ') Z ')), 10_000, 50);
    }
  }
}
