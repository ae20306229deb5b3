/**
 * The real lvmlockd + sanlock test bed: two TCG guests, hosts "A" (host_id 1) and "B" (host_id 2),
 * sharing one raw disk that holds a sanlock VG. Real lvm2, lvmlockd and sanlock run inside the
 * guests (each guest kernel has device-mapper; the host's need not).
 *
 * Setup: vgcreate --shared --locktype sanlock on A, plain LVs, a thin pool with one thin LV, then
 * lockstart on B (retried once: without udev the first lockstart on a host that has not activated
 * the hidden lvmlock LV fails, see lockstart()). Every LV is inactive afterwards, but A still holds
 * the thin pool's lock ex: lvcreate of a thin LV leaves it so (lvm 2.03.16). reset() releases it.
 */
import { constants as fsConstants } from 'node:fs';
import { access, appendFile, mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Host } from '../contract/lvm-contract.js';
import type { Exec, RunResult } from '../../src/lvm/run.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, Guest, type GuestResult } from './guest.js';
import { runHost } from './host-command.js';
import type { GuestImage } from './image.js';
import { CACHE_DIR, RUNS_DIR } from './paths.js';

export type { Host };
export const HOSTS: readonly Host[] = ['A', 'B'];
export const HOST_IDS: Record<Host, number> = { A: 1, B: 2 };

export interface TestbedLayout {
  vg: string;
  /** Plain linear LVs, 64 MiB each. */
  plain: string[];
  /** A thin pool and its thin LVs; none when empty. */
  thinPool?: string;
  thin: string[];
}

export const DEFAULT_LAYOUT: TestbedLayout = { vg: 'vg0', plain: ['lv1', 'lv2'], thinPool: 'pool0', thin: ['thin1'] };

export interface TestbedOptions {
  layout?: TestbedLayout;
  /** lvmlockd -o (sanlock I/O timeout, s); undefined keeps lvmlockd's default of 10 s. */
  ioTimeoutSec?: number;
  /** Name for the transcript file, e.g. the test file's name. */
  label: string;
  log?: (line: string) => void;
}

export interface JournalEntry {
  host: Host;
  argv: string[];
  rc: number;
  ms: number;
  wallMs: number;
  /** Seconds since the bed started, when the command was submitted. */
  at: number;
  stderr: string;
}

export interface QemuTools {
  qemu: string;
  setpriv?: string;
}

const BOOT_TIMEOUT_MS = 5 * 60_000;
/** vgcreate and lockstart wait for sanlock: 20-50 s, minutes after an unclean stop. */
const LOCKSPACE_TIMEOUT_MS = 5 * 60_000;
const SHARED_DISK_BYTES = 1024 * 1024 * 1024;

function lvList(layout: TestbedLayout): string[] {
  return [...layout.plain, ...(layout.thinPool ? [layout.thinPool] : []), ...layout.thin].map((lv) => `${layout.vg}/${lv}`);
}

/** /dev/mapper name of vg/lv: dashes doubled, joined by one dash. */
export function dmName(vgLv: string): string {
  const [vg, lv] = vgLv.split('/');
  if (!vg || !lv) throw new Error(`not a vg/lv name: ${vgLv}`);
  return `${vg.replace(/-/g, '--')}-${lv.replace(/-/g, '--')}`;
}

async function findExecutable(name: string): Promise<string | undefined> {
  const path = `${process.env.PATH ?? ''}:/usr/bin:/usr/sbin:/bin:/sbin:/usr/local/bin`;
  for (const dir of path.split(':').filter((d) => d.startsWith('/'))) {
    try {
      await access(join(dir, name), fsConstants.X_OK);
      return join(dir, name);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Whether QEMU can run here at all; the reason when it cannot. */
export async function findQemu(): Promise<QemuTools | { missing: string }> {
  const override = process.env.LVMLOCKD_TESTBED_QEMU;
  const qemu = override || (await findExecutable('qemu-system-x86_64'));
  if (!qemu) return { missing: 'qemu-system-x86_64 is not installed (Debian package qemu-system-x86; scripts/test-lvmlockd.sh installs it as root)' };
  const version = await runHost(qemu, ['--version'], { timeoutMs: 30_000 });
  if (version.rc !== 0) return { missing: `${qemu} --version failed: ${version.stderr.trim() || `exit ${version.rc}`}${override ? ' (from LVMLOCKD_TESTBED_QEMU)' : ''}` };
  const setpriv = await findExecutable('setpriv');
  return setpriv ? { qemu, setpriv } : { qemu };
}

/** Run directories left by a test process that died without cleaning up (its QEMU died with it). */
async function removeStaleRuns(): Promise<void> {
  const entries = await readdir(RUNS_DIR).catch(() => [] as string[]);
  for (const e of entries) {
    const owner = Number((await readFile(join(RUNS_DIR, e, 'owner.pid'), 'utf8').catch(() => '')).trim());
    let alive = false;
    try {
      if (owner > 0) {
        process.kill(owner, 0);
        alive = true;
      }
    } catch {
      alive = false;
    }
    if (!alive) await rm(join(RUNS_DIR, e), { recursive: true, force: true });
  }
}

export class Testbed {
  readonly journal: JournalEntry[] = [];
  readonly timings: Record<string, number> = {};
  private readonly opened = new Map<Host, Set<string>>([['A', new Set()], ['B', new Set()]]);
  private readonly t0 = performance.now();
  private readonly transcript: string;
  private stopped = false;

  private constructor(
    readonly dir: string,
    readonly guests: Record<Host, Guest>,
    readonly layout: TestbedLayout,
    private readonly options: TestbedOptions,
  ) {
    this.transcript = join(CACHE_DIR, 'transcripts', `${options.label}.md`);
  }

  /** Boots both guests and builds the shared VG. On any failure the guests are stopped first. */
  static async start(image: GuestImage, tools: QemuTools, options: TestbedOptions): Promise<Testbed> {
    await mkdir(RUNS_DIR, { recursive: true });
    await removeStaleRuns();
    const dir = await mkdtemp(join(RUNS_DIR, `${options.label}-`));
    await writeFile(join(dir, 'owner.pid'), String(process.pid));
    const disk = join(dir, 'shared.img');
    const h = await open(disk, 'w');
    await h.truncate(SHARED_DISK_BYTES);
    await h.close();
    const make = (name: Host) => new Guest({ name, hostId: HOST_IDS[name], image, sharedDisk: disk, dir: join(dir, name), ioTimeoutSec: options.ioTimeoutSec });
    const bed = new Testbed(dir, { A: make('A'), B: make('B') }, options.layout ?? DEFAULT_LAYOUT, options);
    try {
      await mkdir(join(CACHE_DIR, 'transcripts'), { recursive: true });
      await writeFile(bed.transcript, `# ${options.label}: lvmlockd test bed transcript\n\nio_timeout: ${options.ioTimeoutSec ?? 'lvmlockd default (10 s)'}\n\n`);
      await bed.boot(tools);
      await bed.setup();
      return bed;
    } catch (err) {
      await bed.stop();
      throw err;
    }
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  private since(): number {
    return Math.round(performance.now() - this.t0) / 1000;
  }

  private async boot(tools: QemuTools): Promise<void> {
    const t = performance.now();
    for (const host of HOSTS) await this.guests[host].start(tools.qemu, tools.setpriv);
    const ready = await Promise.all(HOSTS.map((host) => this.guests[host].waitReady(BOOT_TIMEOUT_MS)));
    this.timings.bootMs = Math.round(performance.now() - t);
    const detail = HOSTS.map((h, i) => `${h} ${(ready[i]! / 1000).toFixed(1)} s (guest uptime at /init ${this.guests[h].uptimeAtInit} s, ready ${this.guests[h].uptimeAtReady} s)`).join(', ');
    this.log(`boot: both guests ready in ${(this.timings.bootMs / 1000).toFixed(1)} s: ${detail}`);
    await appendFile(this.transcript, `boot: ${detail}\n\n`);
  }

  /** Runs a command in a guest, recording it in the journal and the transcript. */
  async run(host: Host, argv: string[], timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<GuestResult> {
    if (this.stopped) throw new Error(`test bed stopped; cannot run ${argv.join(' ')} on ${host}`);
    const at = this.since();
    const r = await this.guests[host].run(argv, timeoutMs);
    this.journal.push({ host, argv, rc: r.rc, ms: r.ms, wallMs: r.wallMs, at, stderr: r.stderr });
    let text = `### ${host}: \`${argv.join(' ')}\`\nrc=${r.rc} guest ${(r.ms / 1000).toFixed(2)} s, host ${(r.wallMs / 1000).toFixed(2)} s, at +${at.toFixed(1)} s${r.timedOut ? ' TIMED OUT' : ''}\n`;
    if (r.stdout) text += `stdout:\n\`\`\`\n${r.stdout}\`\`\`\n`;
    if (r.stderr) text += `stderr:\n\`\`\`\n${r.stderr}\`\`\`\n`;
    await appendFile(this.transcript, `${text}\n`).catch(() => undefined);
    return r;
  }

  /** Runs a command that must exit 0. */
  async must(host: Host, argv: string[], timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<GuestResult> {
    const r = await this.run(host, argv, timeoutMs);
    if (r.rc !== 0) throw new Error(`${argv.join(' ')} on host ${host}: exit ${r.rc}${r.timedOut ? ' (timed out)' : ''}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r;
  }

  /**
   * vgchange --lockstart, retried once. Without udev, lvm activates the hidden lvmlock LV but
   * creates /dev/mapper/<vg>-lvmlock only when the command ends; lvmlockd stat()s it earlier and
   * the start fails ("VG vg0 start failed: invalid parameters for sanlock"). The retry finds it.
   */
  async lockstart(host: Host, vg = this.layout.vg): Promise<{ first: GuestResult; retry?: GuestResult }> {
    const first = await this.run(host, ['vgchange', '--lockstart', vg], LOCKSPACE_TIMEOUT_MS);
    if (first.rc === 0) return { first };
    const retry = await this.must(host, ['vgchange', '--lockstart', vg], LOCKSPACE_TIMEOUT_MS);
    return { first, retry };
  }

  private async setup(): Promise<void> {
    const { vg } = this.layout;
    const t = performance.now();
    const vgcreate = await this.must('A', ['vgcreate', '--shared', '--locktype', 'sanlock', vg, '/dev/vda'], LOCKSPACE_TIMEOUT_MS);
    this.timings.vgcreateMs = vgcreate.ms;
    // B joins the lockspace while A creates the LVs: the two only meet on the short VG lock.
    const createLvs = async () => {
      const tc = performance.now();
      for (const lv of this.layout.plain) await this.must('A', ['lvcreate', '-an', '-Zn', '-L', '64M', '-n', lv, vg]);
      if (this.layout.thinPool) {
        await this.must('A', ['lvcreate', '-an', '-Zn', '--type', 'thin-pool', '-L', '64M', '-n', this.layout.thinPool, vg]);
        for (const lv of this.layout.thin) await this.must('A', ['lvcreate', '-an', '--type', 'thin', '-V', '64M', '-n', lv, `${vg}/${this.layout.thinPool}`]);
      }
      this.timings.lvcreateMs = Math.round(performance.now() - tc);
    };
    const joinB = async () => {
      const r = await this.lockstart('B');
      this.timings.lockstartBFirstMs = r.first.ms;
      this.timings.lockstartBFirstRc = r.first.rc;
      if (r.retry) this.timings.lockstartBRetryMs = r.retry.ms;
    };
    await Promise.all([createLvs(), joinB()]);
    // Every LV the layout names exists and is inactive on both hosts.
    for (const host of HOSTS) {
      const lvs = await this.must(host, ['lvs', '--noheadings', '-o', 'lv_name,lv_attr', vg]);
      for (const lv of lvList(this.layout)) {
        const name = lv.slice(vg.length + 1);
        const row = lvs.stdout.split('\n').map((l) => l.trim().split(/\s+/)).find((w) => w[0] === name);
        if (!row) throw new Error(`setup: ${lv} not listed by lvs on ${host}: ${lvs.stdout}`);
        if (row[1]?.[4] === 'a') throw new Error(`setup: ${lv} is active on ${host} after setup (${row[1]})`);
      }
    }
    this.timings.setupMs = Math.round(performance.now() - t);
    this.log(
      `setup: ${(this.timings.setupMs / 1000).toFixed(1)} s (vgcreate ${(vgcreate.ms / 1000).toFixed(1)} s; LVs ${((this.timings.lvcreateMs ?? 0) / 1000).toFixed(1)} s; ` +
        `lockstart on B: first rc ${this.timings.lockstartBFirstRc} in ${((this.timings.lockstartBFirstMs ?? 0) / 1000).toFixed(1)} s` +
        (this.timings.lockstartBRetryMs !== undefined ? `, retry ${(this.timings.lockstartBRetryMs / 1000).toFixed(1)} s)` : ')'),
    );
  }

  /** A process on the host keeps vg/lv's device open, as QEMU keeps a guest disk. */
  async open(host: Host, vgLv: string): Promise<void> {
    const name = dmName(vgLv);
    await this.must(host, ['testbed-open', `/dev/mapper/${name}`, name]);
    this.opened.get(host)!.add(vgLv);
  }

  async close(host: Host, vgLv: string): Promise<void> {
    await this.must(host, ['testbed-close', dmName(vgLv)]);
    this.opened.get(host)!.delete(vgLv);
  }

  /** lvmlockd's LV lock lines on a host: mode by dashed LV uuid. */
  async lockLines(host: Host): Promise<string[]> {
    const r = await this.must(host, ['lvmlockctl', '--info']);
    return r.stdout.split('\n').filter((l) => l.startsWith('LK LV '));
  }

  async lockspaceStarted(host: Host, vg = this.layout.vg): Promise<boolean> {
    const r = await this.must(host, ['lvmlockctl', '--info']);
    return r.stdout.split('\n').some((l) => l.startsWith(`VG ${vg} `));
  }

  /** Device-mapper devices of the test VG that are active on a host, besides the hidden lvmlock LV. */
  async activeDevices(host: Host): Promise<string[]> {
    const prefix = `${this.layout.vg.replace(/-/g, '--')}-`;
    const r = await this.must(host, ['dmsetup', 'info', '-c', '--noheadings', '-o', 'name']);
    return r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((n) => n.startsWith(prefix) && n !== `${prefix}lvmlock`);
  }

  /**
   * Back to the state after setup: nothing held open, every LV inactive and unlocked on both hosts,
   * both lockspaces started. Deactivates only where something is held or active (vgchange -an of a
   * VG with a thin pool takes 1-3 s). Throws when a lock or an active LV survives.
   */
  async reset(): Promise<void> {
    const { vg } = this.layout;
    await Promise.all(
      HOSTS.map(async (host) => {
        await this.must(host, ['testbed-close', '--all']);
        this.opened.get(host)!.clear();
        if (!(await this.lockspaceStarted(host))) await this.lockstart(host);
        const held = (await this.lockLines(host)).filter((l) => !l.startsWith('LK LV un '));
        if (held.length > 0 || (await this.activeDevices(host)).length > 0) {
          await this.must(host, ['vgchange', '-an', vg]);
          const still = (await this.lockLines(host)).filter((l) => !l.startsWith('LK LV un '));
          if (still.length > 0) throw new Error(`reset: host ${host} still holds LV locks after vgchange -an ${vg}: ${still.join(' | ')}`);
          const active = await this.activeDevices(host);
          if (active.length > 0) throw new Error(`reset: host ${host} still has active LVs after vgchange -an ${vg}: ${active.join(', ')}`);
        }
      }),
    );
  }

  /** The daemon's Exec, running the command in a guest instead of locally. */
  exec(host: Host): Exec {
    return async (file, args, opts): Promise<RunResult> => {
      const name = file.slice(file.lastIndexOf('/') + 1);
      const r = await this.run(host, [name, ...args], opts.timeoutMs);
      return { rc: r.timedOut ? null : r.rc, signal: r.timedOut ? 'SIGTERM' : null, stdout: r.stdout, stderr: r.stderr, ms: r.ms, timedOut: r.timedOut };
    };
  }

  /** Kills a guest's QEMU process outright: the host dies holding whatever it held. */
  async kill(host: Host): Promise<void> {
    await this.guests[host].stop('SIGKILL');
  }

  /** Timing summary of the journal: per distinct command shape (argv with LV names), guest ms. */
  summary(): string[] {
    const groups = new Map<string, number[]>();
    for (const e of this.journal) {
      const key = `${e.argv.join(' ')} rc=${e.rc}`;
      groups.set(key, [...(groups.get(key) ?? []), e.ms]);
    }
    return [...groups.entries()].map(([k, ms]) => {
      const sorted = [...ms].sort((a, b) => a - b);
      return `${String(ms.length).padStart(3)}x  ${(sorted[0]! / 1000).toFixed(2)}-${(sorted.at(-1)! / 1000).toFixed(2)} s  ${k}`;
    });
  }

  /** Stops both guests (a power cut: the shared disk is thrown away) and removes the run directory. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      await Promise.all(HOSTS.map((h) => this.guests[h].stop()));
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}
