/**
 * Two hypervisors, hvA and hvB: one point-to-point link between their QEMUs over loopback
 * (192.0.2.1 and 192.0.2.2 inside), one shared raw disk, and the project's .deb installed with
 * apt in each. stop() kills both QEMUs by PID and removes the run directory, whatever happened.
 */
import { readFile, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import { HOSTS } from './guest-files.js';
import { Hypervisor } from './hypervisor.js';
import type { HypervisorImage } from './image.js';
import { RUNS_DIR } from './paths.js';

const SHARED_DISK_BYTES = 1024 * 1024 * 1024;
const APT_MS = 10 * 60_000;

/** A TCP port on loopback that is free now (the link's listening QEMU takes it right after). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port from listen(0)'))));
    });
  });
}

export interface BootReport {
  host: string;
  state: string;
  failed: string;
  ms: number;
}

export class Cluster {
  private constructor(readonly dir: string, readonly hosts: Hypervisor[]) {}

  /** Starts both hypervisors and waits for their boot; on any failure, stops what started. */
  static async start(qemu: string, image: HypervisorImage, log: (line: string) => void): Promise<{ cluster: Cluster; boots: BootReport[] }> {
    await mkdir(RUNS_DIR, { recursive: true });
    const dir = await mkdtemp(join(RUNS_DIR, 'run-'));
    const cluster = new Cluster(dir, []);
    try {
      await writeFile(join(dir, 'owner.pid'), String(process.pid));
      const shared = join(dir, 'shared.img');
      const h = await open(shared, 'w');
      await h.truncate(SHARED_DISK_BYTES);
      await h.close();
      const port = await freePort();
      const t0 = performance.now();
      const [a, b] = [HOSTS[0]!, HOSTS[1]!];
      // The listening end first: the connecting QEMU fails at once if nobody listens.
      cluster.hosts.push(await Hypervisor.start({ qemu, image, host: a, runDir: dir, sharedDisk: shared, link: { listen: port } }));
      cluster.hosts.push(await Hypervisor.start({ qemu, image, host: b, runDir: dir, sharedDisk: shared, link: { connect: port } }));
      log(`QEMU started: ${cluster.hosts.map((hv) => `${hv.host.name} pid ${hv.pid}`).join(', ')}; link on 127.0.0.1:${port}`);
      const boots = await Promise.all(
        cluster.hosts.map(async (hv) => {
          const r = await hv.waitBooted();
          return { host: hv.host.name, ...r, ms: Math.round(performance.now() - t0) };
        }),
      );
      return { cluster, boots };
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  /** Copies the .deb into every host through the command channel and installs it with apt. */
  async installDeb(deb: string): Promise<number[]> {
    const data = await readFile(deb);
    const target = `/var/tmp/${basename(deb)}`;
    return Promise.all(
      this.hosts.map(async (hv) => {
        const t0 = performance.now();
        await hv.put(target, data);
        // No network in the guest: every dependency is already in the image, so apt fetches nothing.
        await hv.mustRun(['apt-get', 'install', '-y', '--no-install-recommends', '-o', 'Acquire::Retries=0', target], {
          timeoutMs: APT_MS,
          env: { DEBIAN_FRONTEND: 'noninteractive' },
        });
        return Math.round(performance.now() - t0);
      }),
    );
  }

  async stop(): Promise<void> {
    try {
      await Promise.all(this.hosts.map((hv) => hv.stop()));
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}
