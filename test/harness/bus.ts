import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestProcess, waitFor } from './process.js';

/**
 * A private dbus-daemon of type system with an allow-all policy, so the daemon, libvirt-dbus,
 * the CLI and the hook meet on a bus of their own, like the system bus of one host.
 */
export class PrivateBus {
  private constructor(
    readonly dir: string,
    readonly address: string,
    private readonly process: TestProcess,
  ) {}

  static async start(): Promise<PrivateBus> {
    const dir = await mkdtemp(join(tmpdir(), 'vlt-bus-'));
    const socket = join(dir, 'bus.sock');
    await writeFile(
      join(dir, 'bus.conf'),
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`,
    );
    const proc = TestProcess.start('dbus-daemon', 'dbus-daemon', ['--nofork', `--config-file=${join(dir, 'bus.conf')}`]);
    try {
      await waitFor('the private bus socket', () => existsSync(socket), 10_000);
    } catch (err) {
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
      throw new Error(`${(err as Error).message}\n${proc.text()}`);
    }
    return new PrivateBus(dir, `unix:path=${socket}`, proc);
  }

  get pid(): number {
    return this.process.pid;
  }

  async stop(): Promise<void> {
    await this.process.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Kills the bus abruptly, to test that clients notice its death. */
  kill(): void {
    this.process.kill('SIGKILL');
  }
}
