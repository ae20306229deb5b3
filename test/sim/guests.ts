/** The guests of the simulated cluster: small domain XML, one to two managed disks each. */
export interface DiskSpec {
  /** "vg/lv" */
  lv: string;
  shareable: boolean;
  /** A `<disk type='volume'>` in pool0 (a logical pool over vg0): resolved through the pool list. */
  volume: boolean;
  alias: string;
}

export interface GuestSpec {
  index: number;
  uuid: string;
  name: string;
  disks: DiskSpec[];
  xml: string;
}

function diskXml(d: DiskSpec, i: number): string {
  const target = `<target dev='vd${String.fromCharCode(97 + i)}'/><alias name='${d.alias}'/>`;
  const share = d.shareable ? '<shareable/>' : '';
  if (d.volume) return `<disk type='volume' device='disk'><source pool='pool0' volume='${d.lv.split('/')[1]}'/>${target}${share}</disk>`;
  return `<disk type='block' device='disk'><source dev='/dev/${d.lv}'/>${target}${share}</disk>`;
}

function guest(index: number, disks: Array<Omit<DiskSpec, 'alias'>>): GuestSpec {
  const uuid = `5e1a0000-0000-4000-8000-${String(index).padStart(12, '0')}`;
  const name = `g${index}`;
  const full = disks.map((d, i) => ({ ...d, alias: `ua-${name}-${i}` }));
  const xml = `<domain type='kvm'><name>${name}</name><uuid>${uuid}</uuid><devices>${full.map(diskXml).join('')}</devices></domain>`;
  return { index, uuid, name, disks: full, xml };
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

/** An LV no guest uses: the admin activates it by hand in some schedules. */
export const ADMIN_LV = 'vg0/spare';

export const LVS = ['lv0', 'lv1', 'shared', 'lv2', 'lv3', 'spare'];
