/**
 * The network namespace both instances share: only `lo`, up, with one TEST-NET-1 address per
 * instance (libvirt refuses a loopback migration address). Nothing is added to the root namespace.
 */
import { attempt, must } from './exec.js';

export class NetworkNamespace {
  private constructor(readonly name: string) {}

  static async create(name: string, addresses: string[]): Promise<NetworkNamespace> {
    await must('ip', ['netns', 'add', name]);
    const ns = new NetworkNamespace(name);
    try {
      await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
      for (const address of addresses) await must('ip', ['-n', name, 'addr', 'add', `${address}/32`, 'dev', 'lo']);
    } catch (err) {
      await ns.remove();
      throw err;
    }
    return ns;
  }

  async remove(): Promise<void> {
    const r = await attempt('ip', ['netns', 'del', this.name]);
    if (r.rc !== 0) throw new Error(`removing network namespace ${this.name} failed: ${r.stderr.trim()}`);
  }
}
