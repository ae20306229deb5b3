/**
 * One test-bed guest: a QEMU TCG process with the shared disk and its own 9p command channel.
 * Commands are argument vectors; inside the guest they run under busybox `timeout`, one at a time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GuestImage } from './image.js';
import { registerQemu } from './qemu-processes.js';
import { exists } from '../harness/fs.js';

export interface GuestResult {
  rc: number;
  stdout: string;
  stderr: string;
  /** Guest time the command took (guest uptime, 10 ms resolution), without the channel's polling. */
  ms: number;
  /** Host time from submitting the command to reading its result. */
  wallMs: number;
  /** The guest-side timeout ended the command (SIGTERM). */
  timedOut: boolean;
}

export interface GuestConfig {
  name: string;
  hostId: number;
  image: GuestImage;
  /** The raw disk image every guest shares. */
  sharedDisk: string;
  /** This guest's directory: channel/ (9p), console.log, qemu.log. */
  dir: string;
  /** lvmlockd -o: sanlock I/O timeout in seconds (lvmlockd's default is 10). */
  ioTimeoutSec?: number;
  memoryMb?: number;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 120_000;
/** Host-side slack past the guest-side timeout before the guest itself is declared hung. */
const CHANNEL_SLACK_MS = 60_000;
const POLL_MS = 10;
/** busybox timeout ends the command with SIGTERM; sh reports 128 + 15. */
const RC_TERMINATED = 143;

/** One argument, quoted for the guest's sh: the vector stays a vector. */
function shellWord(arg: string): string {
  if (arg.includes('\0') || arg.includes('\n')) throw new Error(`guest command argument ${JSON.stringify(arg)} contains a NUL or newline`);
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Guest {
  private child: ChildProcess | undefined;
  private exitInfo: string | undefined;
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly qemuOutput: string[] = [];
  readonly channel: string;
  startedAt = 0;
  /** Guest uptime (s) when /init started and when the command loop was ready. */
  uptimeAtInit = 0;
  uptimeAtReady = 0;

  constructor(readonly config: GuestConfig) {
    this.channel = join(config.dir, 'channel');
  }

  get name(): string {
    return this.config.name;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.exitInfo === undefined;
  }

  qemuArgs(): string[] {
    const c = this.config;
    for (const p of [c.sharedDisk, this.channel, c.dir]) {
      if (p.includes(',')) throw new Error(`QEMU option values cannot hold a comma here: ${p}`);
    }
    const append = ['console=ttyS0', 'quiet', 'panic=-1', `testbed.name=${c.name}`, `testbed.hostid=${c.hostId}`];
    if (c.ioTimeoutSec !== undefined) append.push(`testbed.io_timeout=${c.ioTimeoutSec}`);
    return [
      '-machine', 'pc,accel=tcg', '-m', String(c.memoryMb ?? 512), '-smp', '1',
      '-nodefaults', '-display', 'none', '-no-reboot',
      '-kernel', c.image.kernel, '-initrd', c.image.initrd, '-append', append.join(' '),
      // Two QEMU processes write one image: no host cache, no image locks, a shareable device.
      '-drive', `file=${c.sharedDisk},format=raw,if=none,id=shared,cache=none,file.locking=off`,
      '-device', 'virtio-blk-pci,drive=shared,share-rw=on,serial=shared',
      '-virtfs', `local,path=${this.channel},mount_tag=channel,security_model=none,id=channel`,
      '-serial', `file:${join(c.dir, 'console.log')}`, '-monitor', 'none',
    ];
  }

  /** Starts QEMU. With setpriv (util-linux), QEMU also dies if this process dies without cleaning up. */
  async start(qemu: string, setpriv: string | undefined): Promise<void> {
    await mkdir(join(this.channel, 'cmd'), { recursive: true });
    const [file, args] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', qemu, ...this.qemuArgs()]] : [qemu, this.qemuArgs()];
    this.startedAt = performance.now();
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], shell: false });
    this.child = child;
    registerQemu(child);
    const keep = (chunk: Buffer) => {
      this.qemuOutput.push(chunk.toString());
      if (this.qemuOutput.length > 200) this.qemuOutput.splice(0, 100);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('exit', (code, signal) => {
      this.exitInfo ??= signal ? `killed by ${signal}` : `exited with code ${code}`;
    });
    // Only when the process could not be started at all (no 'exit' follows).
    child.once('error', (err) => {
      this.exitInfo ??= `could not start: ${err.message}`;
    });
  }

  async waitReady(timeoutMs: number): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    const ready = join(this.channel, 'ready');
    while (!(await exists(ready))) {
      if (!this.running) throw new Error(`guest ${this.name}: QEMU ${this.exitInfo ?? 'is not running'} before the guest was ready\n${await this.diagnostics()}`);
      if (performance.now() > deadline) throw new Error(`guest ${this.name}: not ready after ${timeoutMs / 1000} s\n${await this.diagnostics()}`);
      await sleep(100);
    }
    const [init, done] = (await readFile(ready, 'utf8')).trim().split(/\s+/).map(Number);
    this.uptimeAtInit = init ?? 0;
    this.uptimeAtReady = done ?? 0;
    return Math.round(performance.now() - this.startedAt);
  }

  /** The tail of the guest console and QEMU's own output, for error messages. */
  async diagnostics(lines = 30): Promise<string> {
    const console = await readFile(join(this.config.dir, 'console.log'), 'utf8').catch(() => '');
    const tail = console.split('\n').slice(-lines).join('\n');
    return `--- guest ${this.name} console (last ${lines} lines):\n${tail}\n--- QEMU output:\n${this.qemuOutput.join('').slice(-2000)}`;
  }

  /** Runs one command in the guest. Rejects only when the guest cannot run it (dead or hung). */
  run(argv: string[], timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<GuestResult> {
    const next = this.queue.then(() => this.runNow(argv, timeoutMs));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(argv: string[], timeoutMs: number): Promise<GuestResult> {
    if (argv.length === 0) throw new Error(`guest ${this.name}: empty command`);
    if (!this.running) throw new Error(`guest ${this.name}: cannot run ${argv.join(' ')}: QEMU ${this.exitInfo ?? 'is not running'}`);
    const id = String(++this.seq).padStart(6, '0');
    const cmd = join(this.channel, 'cmd');
    const base = join(cmd, id);
    const secs = Math.max(1, Math.ceil(timeoutMs / 1000));
    const script = `exec timeout -s TERM ${secs} ${argv.map(shellWord).join(' ')}\n`;
    const started = performance.now();
    // Written under a name the guest ignores, then renamed: the guest never reads half a script.
    await writeFile(join(cmd, `.${id}.tmp`), script);
    await rename(join(cmd, `.${id}.tmp`), `${base}.sh`);
    const deadline = started + secs * 1000 + CHANNEL_SLACK_MS;
    while (!(await exists(`${base}.rc`))) {
      if (!this.running) throw new Error(`guest ${this.name}: QEMU ${this.exitInfo ?? 'stopped'} while running ${argv.join(' ')}`);
      if (performance.now() > deadline) {
        throw new Error(`guest ${this.name}: no answer to ${argv.join(' ')} after ${Math.round((performance.now() - started) / 1000)} s; the guest looks hung\n${await this.diagnostics()}`);
      }
      await sleep(POLL_MS);
    }
    const wallMs = Math.round(performance.now() - started);
    const [rcLine, stdout, stderr] = await Promise.all(['rc', 'out', 'err'].map((ext) => readFile(`${base}.${ext}`, 'utf8')));
    await Promise.all(['rc', 'out', 'err'].map((ext) => rm(`${base}.${ext}`, { force: true })));
    const [rc, t0, t1] = rcLine!.trim().split(/\s+/).map(Number);
    if (rc === undefined || !Number.isInteger(rc) || t0 === undefined || t1 === undefined) throw new Error(`guest ${this.name}: unreadable result ${JSON.stringify(rcLine)} for ${argv.join(' ')}`);
    const ms = Math.round((t1 - t0) * 1000);
    return { rc, stdout: stdout!, stderr: stderr!, ms, wallMs, timedOut: rc === RC_TERMINATED && ms >= secs * 1000 - 500 };
  }

  /** Ends QEMU: SIGTERM (QEMU exits at once, like a power cut), SIGKILL if it lingers. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
