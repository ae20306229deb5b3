/** The guests of the simulated cluster: small domain XML, one to two managed disks each, and spare LVs to hot-plug. */
export interface DiskSpec {
  /** "vg/lv" */
  lv: string;
  shareable: boolean;
  /** A `<disk type='volume'>` in pool0 (a logical pool over vg0): resolved through the pool list. */
  volume: boolean;
  alias: string;
  /** Its target's index: vda is 0. */
  slot: number;
}

export interface GuestSpec {
  index: number;
  uuid: string;
  name: string;
  disks: DiskSpec[];
  xml: string;
}

function diskXml(d: DiskSpec): string {
  const target = `<target dev='vd${String.fromCharCode(97 + d.slot)}'/><alias name='${d.alias}'/>`;
  const share = d.shareable ? '<shareable/>' : '';
  if (d.volume) return `<disk type='volume' device='disk'><source pool='pool0' volume='${d.lv.split('/')[1]}'/>${target}${share}</disk>`;
  return `<disk type='block' device='disk'><source dev='/dev/${d.lv}'/>${target}${share}</disk>`;
}

/** The domain's live XML: its own disks, then the ones hot-plugged into the running QEMU. */
export function domainXml(guest: Pick<GuestSpec, 'name' | 'uuid' | 'disks'>, hot: readonly DiskSpec[] = []): string {
  return `<domain type='kvm'><name>${guest.name}</name><uuid>${guest.uuid}</uuid><devices>${[...guest.disks, ...hot].map(diskXml).join('')}</devices></domain>`;
}

function guest(index: number, disks: Array<Omit<DiskSpec, 'alias' | 'slot'>>): GuestSpec {
  const uuid = `5e1a0000-0000-4000-8000-${String(index).padStart(12, '0')}`;
  const name = `g${index}`;
  const full = disks.map((d, i) => ({ ...d, alias: `ua-${name}-${i}`, slot: i }));
  return { index, uuid, name, disks: full, xml: domainXml({ name, uuid, disks: full }) };
}

export const GUESTS: GuestSpec[] = [
  guest(0, [{ lv: 'vg0/lv0', shareable: false, volume: false }]),
  guest(1, [
    { lv: 'vg0/lv1', shareable: false, volume: false },
    { lv: 'vg0/shared', shareable: true, volume: false },
  ]),
  guest(2, [
    { lv: 'vg0/lv2', shareable: false, volume: false },
    { lv: 'vg0/lv3', shareable: false, volume: true },
  ]),
];

/**
 * LVs no guest starts with, hot-plugged into a running guest (`virsh attach-device --live`). Their
 * slots follow every guest's own disks; libvirt names a hot-plugged disk after its bus and slot.
 */
export const HOT_DISKS: DiskSpec[] = [
  { lv: 'vg0/hot0', shareable: false, volume: false, alias: 'virtio-disk4', slot: 4 },
  { lv: 'vg0/hot1', shareable: false, volume: true, alias: 'virtio-disk5', slot: 5 },
];

export function isHotLv(lv: string): boolean {
  return HOT_DISKS.some((d) => d.lv === lv);
}

/** An LV no guest uses: the admin activates it by hand in some schedules. */
export const ADMIN_LV = 'vg0/spare';

export const LVS = ['lv0', 'lv1', 'shared', 'lv2', 'lv3', 'spare', 'hot0', 'hot1'];
