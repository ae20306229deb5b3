/**
 * Turns two booted hypervisors with the .deb installed into a cluster: a PKI in libvirt's layout
 * (the daemons' peer channel and libvirt's TLS migration share it), sanlock host names and lvm
 * host_ids, the daemon's peer configuration, libvirtd listening on TLS (restarted, so that it also
 * sees the hook), and one `--shared` sanlock VG on the shared disk with its lockspace started on
 * both hosts and the test LVs created inactive.
 */
import { readFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { makePki, type TestPki } from '../harness/pki.js';
import type { Cluster } from './cluster.js';
import type { Hypervisor } from './hypervisor.js';

export const VG = 'vg0';
export const PEER_PORT = 16515;
const SHARED_DEVICE = '/dev/disk/by-id/virtio-shared';
/** The test LVs; small, since the nested guests boot from nothing. */
export const LVS = ['lv1', 'lv2', 'lv3', 'lv4'] as const;
const LV_SIZE = '16M';

const QUICK_MS = 60_000;
// vgcreate --shared on TCG takes about 30 s and the first lock-start about 25 s.
const LOCKSPACE_MS = 5 * 60_000;
// The first libvirt call after a restart probes QEMU's capabilities: 8-15 s here.
const LIBVIRT_MS = 3 * 60_000;

export interface HostIdentity {
  name: string;
  address: string;
  hostId: number;
}

export function identity(hv: Hypervisor, index: number): HostIdentity {
  return { name: hv.host.name, address: hv.host.address, hostId: index + 1 };
}

/** The daemon's configuration on one host: peers are all the other hosts. */
export function daemonConfigYaml(self: HostIdentity, others: HostIdentity[], level = 'debug'): string {
  return stringify({
    log: { level },
    peers: {
      listen: `${self.address}:${PEER_PORT}`,
      hosts: others.map((o) => ({ name: o.name, url: `https://${o.address}:${PEER_PORT}`, host_id: o.hostId })),
    },
  });
}

export const CONFIG_PATH = '/etc/virt-lvmlockd/config.yaml';

/** CA, server and client pairs where libvirt looks for them (and the daemon by default). */
async function installPki(hv: Hypervisor, pki: TestPki): Promise<void> {
  await hv.mustRun(['mkdir', '-p', '/etc/pki/CA', '/etc/pki/libvirt/private', '/etc/sanlock'], { timeoutMs: QUICK_MS });
  const name = hv.host.name;
  const files: [string, string, number][] = [
    [pki.ca, '/etc/pki/CA/cacert.pem', 0o644],
    [pki.host(name).cert, '/etc/pki/libvirt/servercert.pem', 0o644],
    [pki.host(name).key, '/etc/pki/libvirt/private/serverkey.pem', 0o600],
    [pki.client(name).cert, '/etc/pki/libvirt/clientcert.pem', 0o644],
    [pki.client(name).key, '/etc/pki/libvirt/private/clientkey.pem', 0o600],
  ];
  for (const [from, to, mode] of files) await hv.put(to, await readFile(from), mode);
}

async function configureHost(hv: Hypervisor, me: HostIdentity, others: HostIdentity[], pki: TestPki): Promise<void> {
  await installPki(hv, pki);
  // QEMU runs unprivileged; post-copy needs userfaultfd, which Debian keeps for root by default.
  await hv.mustRun(['sysctl', '-q', 'vm.unprivileged_userfaultfd=1'], { timeoutMs: QUICK_MS });
  await hv.put('/etc/lvm/lvmlocal.conf', Buffer.from(`local {\n\thost_id = ${me.hostId}\n}\n`));
  // A stable sanlock host name (the default is a new UUID at every sanlock start).
  await hv.put('/etc/sanlock/sanlock.conf', Buffer.from(`our_host_name = ${me.name}\n`));
  await hv.mustRun(['systemctl', 'restart', 'sanlock.service'], { timeoutMs: QUICK_MS });
  await hv.mustRun(['systemctl', 'restart', 'lvmlockd.service'], { timeoutMs: QUICK_MS });
  await hv.put(CONFIG_PATH, Buffer.from(daemonConfigYaml(me, others)));
  // libvirtd takes its sockets from systemd: the service must be down while the TLS socket is added.
  await hv.mustRun(['systemctl', 'stop', 'libvirtd.service'], { timeoutMs: QUICK_MS });
  await hv.mustRun(['systemctl', 'enable', '--now', 'libvirtd-tls.socket'], { timeoutMs: QUICK_MS });
  await hv.mustRun(['systemctl', 'start', 'libvirtd.service'], { timeoutMs: QUICK_MS });
  await hv.mustRun(['virsh', '-c', 'qemu:///system', 'version'], { timeoutMs: LIBVIRT_MS });
  await hv.mustRun(['systemctl', 'restart', 'virt-lvmlockd.service'], { timeoutMs: QUICK_MS });
}

export interface StackTimes {
  configureMs: number;
  vgcreateMs: number;
  lockStartMs: number;
  lvcreateMs: number;
}

/** Configures both hosts, then makes the shared VG and its LVs. Returns how long each part took. */
export async function setUpStack(cluster: Cluster): Promise<StackTimes> {
  const [a, b] = cluster.hosts;
  if (!a || !b) throw new Error('the cluster has fewer than two hypervisors');
  const ids = cluster.hosts.map(identity);
  const pki = await makePki(ids.map((id) => ({ name: id.name, san: [`DNS:${id.name}`, `IP:${id.address}`] })));
  const t0 = performance.now();
  try {
    await Promise.all(cluster.hosts.map((hv, i) => configureHost(hv, ids[i]!, ids.filter((_, j) => j !== i), pki)));
  } finally {
    await pki.dispose();
  }
  const t1 = performance.now();
  await a.mustRun(['vgcreate', '--shared', '--locktype', 'sanlock', VG, SHARED_DEVICE], { timeoutMs: LOCKSPACE_MS });
  const t2 = performance.now();
  await b.mustRun(['vgchange', '--lock-start', VG], { timeoutMs: LOCKSPACE_MS });
  const t3 = performance.now();
  for (const lv of LVS) await a.mustRun(['lvcreate', '-an', '-Zn', '-L', LV_SIZE, '-n', lv, VG], { timeoutMs: QUICK_MS });
  const t4 = performance.now();
  return { configureMs: t1 - t0, vgcreateMs: t2 - t1, lockStartMs: t3 - t2, lvcreateMs: t4 - t3 };
}
