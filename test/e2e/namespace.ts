/**
 * One instance's private view of the machine: a mount and UTS namespace inside the shared network
 * namespace, held open by a sleeping process the harness owns. Every command that must see the
 * instance's /etc/libvirt, /run/dbus, /dev/vg0 ... runs in it through nsenter, each with an
 * argument vector, so setting up the namespace needs no shell script.
 */
import { readFile, readlink } from 'node:fs/promises';
import { type CommandResult, type RunOptions, must } from './exec.js';
import { TestProcess, waitFor } from '../harness/process.js';

/** Variables that would point a process at another bus or runtime dir than its namespace's own. */
const FOREIGN_ENV: NodeJS.ProcessEnv = {
  DBUS_SYSTEM_BUS_ADDRESS: undefined,
  DBUS_SESSION_BUS_ADDRESS: undefined,
  VIRT_LVMLOCKD_BUS_ADDRESS: undefined,
  VIRT_LVMLOCKD_RUNTIME_DIR: undefined,
};

export class InstanceNamespace {
  private constructor(
    readonly label: string,
    private readonly holder: TestProcess,
  ) {}

  /** Starts the holder: `ip netns exec` and `unshare` exec in place, so its PID ends up as `sleep`. */
  static async create(label: string, netns: string): Promise<InstanceNamespace> {
    const holder = TestProcess.start(`${label} namespace holder`, 'ip', [
      'netns', 'exec', netns, 'unshare', '--mount', '--uts', '--propagation', 'private', 'sleep', 'infinity',
    ]);
    const ns = new InstanceNamespace(label, holder);
    try {
      const ownMountNs = await readlink('/proc/self/ns/mnt');
      await waitFor(`the ${label} namespace holder`, async () => {
        if (!holder.running) throw new Error(`it exited: ${holder.text()}`);
        const comm = (await readFile(`/proc/${holder.pid}/comm`, 'utf8')).trim();
        return comm === 'sleep' && (await readlink(`/proc/${holder.pid}/ns/mnt`)) !== ownMountNs;
      }, 10_000, 20);
    } catch (err) {
      await holder.stop();
      throw err;
    }
    return ns;
  }

  get pid(): number {
    return this.holder.pid;
  }

  private enter(file: string, args: string[]): string[] {
    return ['--target', String(this.pid), '--mount', '--uts', '--net', '--', file, ...args];
  }

  /** Runs a command inside the namespace; fails unless it exits 0. */
  exec(file: string, args: string[], opts: RunOptions = {}): Promise<CommandResult> {
    return must('nsenter', this.enter(file, args), { ...opts, env: { ...FOREIGN_ENV, ...opts.env } });
  }

  /** Starts a long-lived process inside the namespace; nsenter execs in place, so its PID is the process's. */
  spawn(label: string, file: string, args: string[], env: NodeJS.ProcessEnv = {}): TestProcess {
    return TestProcess.start(label, 'nsenter', this.enter(file, args), { ...FOREIGN_ENV, ...env });
  }

  async bind(source: string, target: string): Promise<void> {
    await this.exec('mount', ['--bind', source, target]);
  }

  /**
   * Gives the namespace a /dev of its own: an overlay whose lower layer is the real /dev and whose
   * upper layer is a tmpfs in `workDir`, so symlinks like /dev/vg0/lv1 exist only here while every
   * real device node still opens. The submounts of /dev are bound into it before it replaces /dev.
   */
  async privateDev(workDir: string): Promise<void> {
    await this.exec('mount', ['-t', 'tmpfs', '-o', 'mode=755', 'tmpfs', workDir]);
    await this.exec('mkdir', [`${workDir}/up`, `${workDir}/work`, `${workDir}/dev`]);
    await this.exec('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=/dev,upperdir=${workDir}/up,workdir=${workDir}/work`, `${workDir}/dev`]);
    for (const sub of ['pts', 'shm', 'mqueue', 'hugepages']) {
      const probe = await this.exec('mountpoint', ['-q', `/dev/${sub}`]).then(() => true, () => false);
      if (probe) await this.exec('mount', ['--rbind', `/dev/${sub}`, `${workDir}/dev/${sub}`]);
    }
    await this.exec('mount', ['--move', `${workDir}/dev`, '/dev']);
  }

  async symlink(target: string, path: string): Promise<void> {
    await this.exec('mkdir', ['-p', path.slice(0, path.lastIndexOf('/'))]);
    await this.exec('ln', ['-sfn', target, path]);
  }

  async remove(path: string): Promise<void> {
    await this.exec('rm', ['-f', path]);
  }

  async setHostname(name: string): Promise<void> {
    await this.exec('hostname', [name]);
  }

  /** Ends the holder; the namespace and its mounts go away with the last process inside it. */
  async stop(): Promise<void> {
    await this.holder.stop();
  }
}
