/** The two lock modes lvmlockd grants on an LV; "off" means released (deactivated). */
export type LockMode = 'ex' | 'sh';
export type TargetMode = LockMode | 'off';

/** One logical volume, named by its volume group and LV name. */
export interface LvRef {
  vg: string;
  lv: string;
}

/** The canonical "vg/lv" key used in the lock table, logs and the CLI. */
export function lvKey(ref: LvRef): string {
  return `${ref.vg}/${ref.lv}`;
}

export function parseLvKey(key: string): LvRef {
  const slash = key.indexOf('/');
  if (slash <= 0 || slash === key.length - 1 || key.indexOf('/', slash + 1) !== -1) {
    throw new Error(`"${key}" is not a volume name of the form VG/LV`);
  }
  return { vg: key.slice(0, slash), lv: key.slice(slash + 1) };
}

/** The stronger of two wanted modes: an LV wanted ex by any user must be ex. */
export function strongerMode(a: LockMode, b: LockMode): LockMode {
  return a === 'ex' || b === 'ex' ? 'ex' : 'sh';
}
