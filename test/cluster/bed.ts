/**
 * The cluster every test in cluster.test.ts shares: both hypervisors booted, the .deb installed
 * with apt, the stack set up (stack.ts) and the nested guests defined on hvA. Booting and the
 * lock set-up take minutes under TCG, so the tests run in one process, in order, and each leaves
 * the guests shut off and no lock held.
 */
import { writeBusyDisk } from './breakage-tests.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Cluster } from './cluster.js';
import { HOSTS } from './guest-files.js';
import type { Hypervisor } from './hypervisor.js';
import { define, domState, mustVirsh, virsh, type NestedGuest } from './nested.js';
import type { Prepared } from './prepare.js';
import { CACHE_DIR } from './paths.js';
import { lvUuids, readHost, sampled, type GuestDisks, type HostView, type Sampled } from './probe.js';
import { setUpStack } from './stack.js';

/**
 * Plain guests get ex and need the handoff to migrate; `share` has a <shareable/> disk; `busy`
 * boots a sector that keeps its memory dirty (breakage-tests.ts).
 */
export const GUESTS = {
  tiny: { name: 'tiny', uuid: '22222222-2222-4222-8222-000000000001', lv: 'lv1' },
  share: { name: 'share', uuid: '22222222-2222-4222-8222-000000000003', lv: 'lv3', shareable: true },
  busy: { name: 'busy', uuid: '22222222-2222-4222-8222-000000000004', lv: 'lv4', memoryMiB: 64 },
} satisfies Record<string, NestedGuest>;

export class Bed {
  private constructor(
    readonly cluster: Cluster,
    readonly prep: Prepared,
    readonly uuids: Map<string, string>,
  ) {}

  static async start(prep: Prepared, say: (line: string) => void): Promise<Bed> {
    const started = await Cluster.start(prep.qemu, prep.image, say);
    const cluster = started.cluster;
    try {
      for (const b of started.boots) say(`${b.host} booted (${b.state}) after ${(b.ms / 1000).toFixed(1)} s${b.failed ? `; failed units: ${b.failed}` : ''}`);
      const ms = await cluster.installDeb(prep.deb);
      say(`apt-get install of ${prep.deb.split('/').at(-1)}: ${ms.map((m, i) => `${HOSTS[i]!.name} ${(m / 1000).toFixed(1)} s`).join(', ')}`);
      const t = await setUpStack(cluster);
      say(
        `stack set up: configure ${(t.configureMs / 1000).toFixed(1)} s, vgcreate --shared ${(t.vgcreateMs / 1000).toFixed(1)} s, ` +
          `lock-start on hvB ${(t.lockStartMs / 1000).toFixed(1)} s, lvcreate ${(t.lvcreateMs / 1000).toFixed(1)} s`,
      );
      const [a] = cluster.hosts;
      for (const g of Object.values(GUESTS)) await define(a!, g);
      await writeBusyDisk(a!);
      return new Bed(cluster, prep, await lvUuids(a!));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  get a(): Hypervisor {
    return this.cluster.hosts[0]!;
  }

  get b(): Hypervisor {
    return this.cluster.hosts[1]!;
  }

  host(name: string): Hypervisor {
    const found = this.cluster.hosts.find((h) => h.host.name === name);
    if (!found) throw new Error(`no hypervisor ${name}`);
    return found;
  }

  get disks(): GuestDisks {
    return Object.fromEntries(Object.values(GUESTS).map((g) => [g.name, [g.lv]]));
  }

  views(): Promise<HostView[]> {
    return Promise.all(this.cluster.hosts.map((hv) => readHost(hv, this.uuids)));
  }

  sampled<T>(step: () => Promise<T>): Promise<Sampled<T>> {
    return sampled(this.cluster.hosts, this.uuids, this.disks, step);
  }

  /** The daemon's journal on a host since a cursor-free point: the last `lines` lines, message only. */
  async journal(hv: Hypervisor, args: string[] = []): Promise<string> {
    return hv.mustRun(['journalctl', '-u', 'virt-lvmlockd', '--no-pager', '-o', 'cat', ...args], { timeoutMs: 60_000 });
  }

  /**
   * Puts a guest back where each test expects it, whatever an earlier test left: defined on hvA
   * only, and running there or shut off. A test that failed half-way cannot make the next fail.
   */
  async home(g: NestedGuest, running: boolean): Promise<void> {
    const onB = await domState(this.b, g.name);
    if (!onB.startsWith('absent')) {
      if (onB !== 'shut off') await virsh(this.b, ['destroy', g.name]);
      await virsh(this.b, ['undefine', g.name]);
    }
    const onA = await domState(this.a, g.name);
    if (onA.startsWith('absent')) await define(this.a, g);
    if (running && onA !== 'running') {
      if (onA === 'paused') await mustVirsh(this.a, ['resume', g.name]);
      else await mustVirsh(this.a, ['start', g.name]);
    }
    if (!running && onA !== 'shut off' && !onA.startsWith('absent')) await mustVirsh(this.a, ['destroy', g.name]);
  }

  /**
   * Keeps both hosts' journals (the daemon, libvirtd, lvmlockd, sanlock) in the cache's
   * `last-run/` for a look after a failure, then stops the cluster.
   */
  async stop(): Promise<void> {
    try {
      const dir = join(CACHE_DIR, 'last-run');
      await mkdir(dir, { recursive: true });
      await Promise.all(
        this.cluster.hosts.map(async (hv) => {
          const units = ['virt-lvmlockd', 'libvirtd', 'lvmlockd', 'sanlock'].flatMap((u) => ['-u', u]);
          const r = await hv.run(['journalctl', '--no-pager', '-o', 'short-precise', ...units], { timeoutMs: 60_000 });
          await writeFile(join(dir, `${hv.host.name}.journal`), r.stdout);
        }),
      );
    } catch {
      // A host that is gone has no journal to keep; stopping matters more.
    } finally {
      await this.cluster.stop();
    }
  }
}
