import { BusConnection } from '../../src/dbus/bus.js';
import { TestProcess, waitFor } from './process.js';

export const TEST_CONNECTION = '/org/libvirt/Test';

/** The real libvirt-dbus, serving the in-process Test driver (test:///default) on a private bus. */
export class LibvirtDbus {
  private process: TestProcess | undefined;

  constructor(private readonly address: string) {}

  async start(): Promise<void> {
    this.process = TestProcess.start('libvirt-dbus', 'libvirt-dbus', ['--system'], { DBUS_SYSTEM_BUS_ADDRESS: this.address });
    const bus = await BusConnection.connect(this.address, 5000);
    try {
      await waitFor('org.libvirt on the bus', () => bus.nameOwner('org.libvirt', 2000), 15_000, 100);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.process.text()}`);
    } finally {
      bus.disconnect();
    }
  }

  get pid(): number {
    return this.process?.pid ?? -1;
  }

  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
  }

  /** The Test driver keeps its domains in memory: a restart starts again from its defaults. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}
