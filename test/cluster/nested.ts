/**
 * The hypervisors' own guests: tiny TCG domains with no OS (SeaBIOS finds nothing to boot and
 * waits), 32 MiB of memory and one disk on an LV of the shared VG, driven with virsh on the host
 * that runs them. Migrations go host to host over libvirt's TLS transport (qemu+tls), peer to peer.
 */
import type { Hypervisor } from './hypervisor.js';
import { VG } from './stack.js';

export interface NestedGuest {
  name: string;
  uuid: string;
  lv: string;
  /** `<shareable/>`: the daemon takes sh, both hosts may hold it, no handoff is needed. */
  shareable?: boolean;
  /** Guest memory (default 32 MiB). */
  memoryMiB?: number;
}

const VIRSH_MS = 3 * 60_000;

export function domainXml(g: NestedGuest): string {
  return `<domain type='qemu'>
  <name>${g.name}</name>
  <uuid>${g.uuid}</uuid>
  <memory unit='MiB'>${g.memoryMiB ?? 32}</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <on_poweroff>destroy</on_poweroff>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source dev='/dev/${VG}/${g.lv}'/>
      <target dev='vda' bus='virtio'/>${g.shareable ? '\n      <shareable/>' : ''}
    </disk>
    <controller type='scsi' model='virtio-scsi'/>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

export function virsh(hv: Hypervisor, args: string[], timeoutMs = VIRSH_MS) {
  return hv.run(['virsh', '-c', 'qemu:///system', ...args], { timeoutMs });
}

export async function mustVirsh(hv: Hypervisor, args: string[], timeoutMs = VIRSH_MS): Promise<string> {
  return hv.mustRun(['virsh', '-c', 'qemu:///system', ...args], { timeoutMs });
}

export async function define(hv: Hypervisor, g: NestedGuest): Promise<void> {
  const file = `/var/tmp/${g.name}.xml`;
  await hv.put(file, Buffer.from(domainXml(g)));
  await mustVirsh(hv, ['define', file]);
}

export async function domState(hv: Hypervisor, name: string): Promise<string> {
  const r = await virsh(hv, ['domstate', name]);
  return r.rc === 0 ? r.stdout.trim() : `absent (${r.stderr.trim()})`;
}

/** Live migration, peer to peer over TLS, the domain's definition moving with it. */
export function migrateArgs(name: string, to: Hypervisor, extra: string[] = []): string[] {
  return ['migrate', '--live', '--persistent', '--undefinesource', '--p2p', ...extra, name, `qemu+tls://${to.host.name}/system`];
}
