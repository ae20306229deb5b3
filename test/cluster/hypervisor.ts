/**
 * One hypervisor guest: a QEMU TCG process booting the cached image through its own qcow2
 * overlay, with the command channel, an optional point-to-point network end and the shared disk.
 * Each QEMU is registered so that it is killed, by PID, if this process ends without stop().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { mustRunHost } from '../lvmlockd/host-command.js';
import { registerQemu } from '../lvmlockd/qemu-processes.js';
import { AgentClient, type GuestResult } from './agent-client.js';
import { AGENT_PORT, type HostSpec } from './guest-files.js';
import type { HypervisorImage } from './image.js';

export interface HypervisorOptions {
  qemu: string;
  image: HypervisorImage;
  host: HostSpec;
  runDir: string;
  /** The raw disk both hosts share. */
  sharedDisk: string;
  /** This host's end of the link: QEMU listens, or connects to the other host's QEMU. */
  link: { listen: number } | { connect: number };
  memoryMiB?: number;
}

const BOOT_MS = 10 * 60_000;

export class Hypervisor {
  readonly console: string;
  private agent?: AgentClient;

  private constructor(readonly host: HostSpec, private readonly child: ChildProcess, readonly runDir: string) {
    this.console = join(runDir, `${host.name}.console`);
  }

  /** Starts QEMU; the guest boots in the background (see waitBooted). */
  static async start(o: HypervisorOptions): Promise<Hypervisor> {
    const name = o.host.name;
    const overlay = join(o.runDir, `${name}.qcow2`);
    await mustRunHost('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', o.image.base, '-F', 'raw', overlay], { timeoutMs: 30_000 });
    const socket = join(o.runDir, `${name}.agent.sock`);
    const netdev = 'listen' in o.link ? `socket,id=link,listen=127.0.0.1:${o.link.listen}` : `socket,id=link,connect=127.0.0.1:${o.link.connect}`;
    const args = [
      '-machine', 'q35', '-accel', 'tcg,tb-size=256', '-cpu', 'max', '-m', String(o.memoryMiB ?? 1024), '-smp', '1',
      '-nodefaults', '-display', 'none', '-no-reboot', '-monitor', 'none', '-name', name,
      '-kernel', o.image.kernel, '-initrd', o.image.initrd,
      '-append', `root=/dev/vda rw console=ttyS0 panic=-1 net.ifnames=0 systemd.hostname=${name} systemd.machine_id=${o.host.machineId}`,
      '-drive', `file=${overlay},if=none,id=root,format=qcow2,cache=unsafe`, '-device', 'virtio-blk-pci,drive=root,serial=root',
      // Both QEMUs write this disk: no host-side cache and no image locking, as with a real SAN.
      '-drive', `file=${o.sharedDisk},format=raw,if=none,id=shared,cache=none,file.locking=off`,
      '-device', 'virtio-blk-pci,drive=shared,share-rw=on,serial=shared',
      '-netdev', netdev, '-device', `virtio-net-pci,netdev=link,mac=${o.host.mac}`,
      '-serial', `file:${join(o.runDir, `${name}.console`)}`,
      '-device', 'virtio-serial-pci,id=vser',
      '-chardev', `socket,id=agent,path=${socket},server=on,wait=off`,
      '-device', `virtserialport,chardev=agent,name=${AGENT_PORT}`,
    ];
    const log = await open(join(o.runDir, `${name}.qemu.log`), 'w');
    const child = spawn(o.qemu, args, { stdio: ['ignore', log.fd, log.fd] });
    await log.close();
    registerQemu(child);
    const hv = new Hypervisor(o.host, child, o.runDir);
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) => reject(new Error(`${name}: QEMU exited (${signal ?? `code ${code}`}); see ${name}.qemu.log and ${name}.console`))),
    );
    exited.catch(() => undefined);
    hv.agent = await Promise.race([AgentClient.connect(name, socket, 30_000), exited]);
    return hv;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private get channel(): AgentClient {
    if (!this.agent) throw new Error(`${this.host.name}: not started`);
    return this.agent;
  }

  /** Waits for the agent, then for systemd to finish the boot; returns systemd's verdict. */
  async waitBooted(timeoutMs = BOOT_MS): Promise<{ state: string; failed: string }> {
    const t0 = Date.now();
    await this.channel.ping(timeoutMs);
    const left = Math.max(10_000, timeoutMs - (Date.now() - t0));
    const r = await this.run(['systemctl', 'is-system-running', '--wait'], { timeoutMs: left });
    const state = r.stdout.trim();
    if (state !== 'running' && state !== 'degraded') throw new Error(`${this.host.name}: boot ended in state "${state}" (${r.stderr.trim()})`);
    const failed = state === 'degraded' ? (await this.run(['systemctl', '--failed', '--no-legend', '--plain'], { timeoutMs: 30_000 })).stdout.trim() : '';
    return { state, failed };
  }

  run(argv: string[], opts: { timeoutMs: number; env?: Record<string, string> }): Promise<GuestResult> {
    return this.channel.run(argv, opts);
  }

  /** Like run, but a non-zero exit is an error naming the command, host and output. */
  async mustRun(argv: string[], opts: { timeoutMs: number; env?: Record<string, string> }): Promise<string> {
    const r = await this.run(argv, opts);
    if (r.rc !== 0 || r.timedOut) {
      const why = r.timedOut ? `timed out after ${opts.timeoutMs} ms` : `exit ${r.rc ?? r.signal}`;
      throw new Error(`${this.host.name}: ${argv.join(' ')}: ${why}: ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-8).join(' | ')}`);
    }
    return r.stdout;
  }

  put(path: string, data: Buffer, mode?: number): Promise<void> {
    return this.channel.put(path, data, mode);
  }

  /** Kills QEMU (no clean shutdown: the overlay is thrown away) and waits for it to go. */
  async stop(): Promise<void> {
    this.agent?.close();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGKILL');
    await gone;
  }
}
