/**
 * The in-memory lvmlockd of the cluster simulation held to the same LVM contract as the file-based
 * simulator and real lvmlockd: a fresh cluster per scenario, commands answered at once.
 */
import { defineLvmContract, type CommandResult, type Host, type LvmBackend } from '../contract/lvm-contract.js';
import { LvmCluster } from './lvm-cluster.js';

const HOST_IDS: Record<Host, number> = { A: 1, B: 2 };

function makeBackend(hostIdSuffix: boolean): Promise<LvmBackend> {
  const cluster = new LvmCluster([{ name: 'vg0', lockType: 'sanlock', lvs: ['lv1', 'lv2', { name: 'thin1', thin: true }] }], [1, 2], { hostIdSuffix });
  const run = async (host: Host, argv: string[]): Promise<CommandResult> => {
    const [first = '', ...rest] = argv;
    // A bare lvm subcommand, as on a real host, is the same as `lvm <subcommand>`.
    const [file, args] = first === 'lvm' || first === 'lvmlockctl' ? [first, rest] : ['lvm', argv];
    return cluster.run(HOST_IDS[host], file, args, Date.now());
  };
  return Promise.resolve({
    run,
    open: async (host, lv) => {
      if (!cluster.open(HOST_IDS[host], lv)) throw new Error(`cannot open ${lv} on ${host}: not active there`);
    },
    close: async (host, lv) => cluster.close(HOST_IDS[host], lv),
    dispose: async () => undefined,
    lvs: { plain: 'vg0/lv1', plain2: 'vg0/lv2', thin: 'vg0/thin1' },
    hostIds: HOST_IDS,
    hostIdSuffix,
  });
}

defineLvmContract('cluster simulation lvmlockd (lvm 2.03.16)', () => makeBackend(false), { concurrency: true });
defineLvmContract('cluster simulation lvmlockd (host_id suffix as lvm >= 2.03.33)', () => makeBackend(true), { concurrency: true });
