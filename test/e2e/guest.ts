/**
 * The test guest: TCG, 32 MiB, one vCPU, block disks (the shared "LVs") with cache='none' so the
 * migration is safe without VIR_MIGRATE_UNSAFE, no NIC, no display, no balloon.
 */
export interface GuestDisk {
  /** /dev/VG/LV as seen inside each instance. */
  dev: string;
  shareable?: boolean;
}

export interface GuestSpec {
  name: string;
  uuid: string;
  disks: GuestDisk[];
  emulator: string;
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;');

export function guestXml(spec: GuestSpec): string {
  const disks = spec.disks
    .map(
      (d, i) => `    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source dev='${escape(d.dev)}'/>
      <target dev='vd${String.fromCharCode(97 + i)}' bus='virtio'/>${d.shareable ? '\n      <shareable/>' : ''}
    </disk>`,
    )
    .join('\n');
  return `<domain type='qemu'>
  <name>${escape(spec.name)}</name>
  <uuid>${spec.uuid}</uuid>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>${escape(spec.emulator)}</emulator>
${disks}
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

/** The LV paths and shareable flags of a domain's disks, read from libvirt's XML. */
export function disksOfXml(xml: string): GuestDisk[] {
  const disks: GuestDisk[] = [];
  for (const block of xml.match(/<disk\b[\s\S]*?<\/disk>/g) ?? []) {
    const dev = /<source\b[^>]*\bdev=['"]([^'"]+)['"]/.exec(block)?.[1];
    if (dev) disks.push({ dev, shareable: /<shareable\s*\/>|<readonly\s*\/>/.test(block) });
  }
  return disks;
}

/** "vg/lv" for a /dev/VG/LV path, the only form the tests use. */
export function lvKeyOfDev(dev: string): string | undefined {
  const m = /^\/dev\/([^/]+)\/([^/]+)$/.exec(dev);
  return m ? `${m[1]}/${m[2]}` : undefined;
}
