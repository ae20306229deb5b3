/**
 * What a device path says about the LV behind it, from its form alone (no filesystem, no
 * LVM). Forms that name an LV give it directly; forms that may hide an LV are flagged so the
 * caller can ask LVM; everything else is known not to be an LV.
 *
 * When in doubt the functions lean towards naming or flagging: a wrong name is caught later
 * (the VG is not a managed shared VG, or LVM reports no such LV), whereas an LV that is
 * missed would run unlocked.
 */
import type { LvRef } from '../locks/lv.js';

/** LVM's NAME_LEN is 128 including the terminating NUL. */
const MAX_LVM_NAME_LENGTH = 127;

/** Letters and digits as C's isalnum() sees them in LVM, plus "+_.-". */
const LVM_NAME = /^[A-Za-z0-9+_.-]+$/;

/**
 * Directories udev or the kernel create directly under /dev on every host. vgcreate refuses
 * a VG name that already exists under /dev, so "/dev/<one of these>/x" is never /dev/VG/LV.
 */
const STANDARD_DEV_DIRECTORIES = new Set(['mapper', 'disk', 'block']);

const DM_NAME_LINK_PREFIX = 'dm-name-';
const DM_UUID_LINK_PREFIX = 'dm-uuid-';
const LVM_DM_UUID_LINK_PREFIX = 'dm-uuid-LVM-';

/** True when LVM would accept `name` as a VG or LV name. */
export function isLvmName(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= MAX_LVM_NAME_LENGTH &&
    !name.startsWith('-') &&
    name !== '.' &&
    name !== '..' &&
    LVM_NAME.test(name)
  );
}

/** True when `path` is absolute and below /dev (duplicate slashes ignored). */
export function isDevPath(path: string): boolean {
  const parts = pathComponents(path);
  return parts !== undefined && parts.length >= 2 && parts[0] === 'dev';
}

/** Names VG and LV from the path's form alone; undefined when the form cannot name them (needs LVM). */
export function lvFromPath(path: string): LvRef | undefined {
  const parts = devComponents(path);
  if (parts === undefined || parts.some(isDotComponent)) {
    return undefined;
  }
  const [first, second, third] = parts;
  if (parts.length === 2 && first === 'mapper') {
    return lvFromDmName(second!);
  }
  if (parts.length === 3 && first === 'disk' && second === 'by-id' && third!.startsWith(DM_NAME_LINK_PREFIX)) {
    return lvFromDmName(third!.slice(DM_NAME_LINK_PREFIX.length));
  }
  if (parts.length === 2 && !STANDARD_DEV_DIRECTORIES.has(first!) && isLvmName(first!) && isLvmName(second!)) {
    return { vg: first!, lv: second! };
  }
  return undefined;
}

/** True when the path is a device path that might be an LV but whose form does not name it
 *  (/dev/dm-N, /dev/disk/by-id/dm-uuid-LVM-..., other /dev/disk/by-* links, /dev/block/M:N ...) */
export function needsLvmLookup(path: string): boolean {
  const parts = devComponents(path);
  if (parts === undefined || lvFromPath(path) !== undefined) {
    return false;
  }
  // "/dev/vg/../vg/lv" may well be an LV; only resolving the path can tell.
  if (parts.some(isDotComponent)) {
    return true;
  }
  const [first, second, third] = parts;
  if (parts.length === 1) {
    return /^dm-[0-9]+$/.test(first!);
  }
  if (first === 'block') {
    return parts.length === 2 && /^[0-9]+:[0-9]+$/.test(second!);
  }
  if (first === 'disk' && parts.length >= 3 && second!.startsWith('by-')) {
    if (second === 'by-id' && third!.startsWith(DM_NAME_LINK_PREFIX)) {
      // A device-mapper name that does not decode to VG-LV: not an LV (like /dev/mapper/NAME).
      return false;
    }
    if (second === 'by-id' && third!.startsWith(DM_UUID_LINK_PREFIX)) {
      // The dm UUID prefix names the subsystem that owns the device (CRYPT-, mpath-, LVM-...).
      return third!.startsWith(LVM_DM_UUID_LINK_PREFIX);
    }
    return true;
  }
  return false;
}

/**
 * Decodes a device-mapper name made by LVM: VG and LV joined by one '-', with every '-'
 * inside either name doubled. Read left to right, "--" is a literal '-' and a single '-'
 * separates; that is the only reading in which the LV name does not start with '-'. Names
 * with more than one separator are LVM's internal layers (vg-lv-real, vg-pool-tpool).
 */
function lvFromDmName(dmName: string): LvRef | undefined {
  const names: string[] = [];
  let current = '';
  for (let i = 0; i < dmName.length; i += 1) {
    const c = dmName[i]!;
    if (c !== '-') {
      current += c;
    } else if (dmName[i + 1] === '-') {
      current += '-';
      i += 1;
    } else {
      names.push(current);
      current = '';
    }
  }
  names.push(current);
  const [vg, lv] = names;
  if (names.length !== 2 || !isLvmName(vg!) || !isLvmName(lv!)) {
    return undefined;
  }
  return { vg: vg!, lv: lv! };
}

/** The components of `path` after "/dev", or undefined when it is not an absolute path below /dev. */
function devComponents(path: string): string[] | undefined {
  const parts = pathComponents(path);
  if (parts === undefined || parts.length < 2 || parts[0] !== 'dev') {
    return undefined;
  }
  return parts.slice(1);
}

/** Components of an absolute path; duplicate and trailing slashes ignored. */
function pathComponents(path: string): string[] | undefined {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    return undefined;
  }
  return path.split('/').filter((part) => part !== '');
}

function isDotComponent(part: string): boolean {
  return part === '.' || part === '..';
}
