/**
 * Tells whether a host path that QEMU will open is an LV, by looking at the filesystem: the
 * path's form first (/dev/VG/LV, /dev/mapper/VG-LV), then where its links lead
 * (/var/lib/libvirt/images/x -> /dev/vg/lv, or -> /dev/dm-3), then, for a block device node,
 * the kernel's device-mapper view in sysfs. LVM itself is never run here: when only LVM can
 * tell (an inactive LV under a form that does not name it), the verdict says so.
 *
 * Filesystem calls cannot be cancelled (they run on libuv's thread pool, e.g. on a hung NFS
 * mount), so each classification has a deadline: past it the verdict is "unknown" and the
 * call is left to finish on its own.
 */
import * as fsPromises from 'node:fs/promises';
import { posix } from 'node:path';
import type { LvRef } from '../locks/lv.js';
import { lvFromPath, needsLvmLookup } from './lv-path.js';

export type PathVerdict =
  | { kind: 'lv'; lv: LvRef }
  /** Known not to be an LV, and why (for the debug log). */
  | { kind: 'not-lv'; why: string }
  /** A device path whose LV only LVM can name (not active here, or not in sysfs). */
  | { kind: 'ask-lvm'; path: string }
  /** Cannot tell: the caller must say so, never treat it as "not an LV" silently. */
  | { kind: 'unknown'; why: string };

/** The filesystem calls used, so that tests can stand in for a host with LVs. */
export interface HostFs {
  realpath(path: string): Promise<string>;
  stat(path: string): Promise<{ isBlockDevice(): boolean; rdev: number }>;
  lstat(path: string): Promise<{ isSymbolicLink(): boolean }>;
  readlink(path: string): Promise<string>;
  readFile(path: string, encoding: 'utf8'): Promise<string>;
}

export const nodeHostFs: HostFs = {
  realpath: (path) => fsPromises.realpath(path),
  stat: (path) => fsPromises.stat(path),
  lstat: (path) => fsPromises.lstat(path),
  readlink: (path) => fsPromises.readlink(path),
  readFile: (path, encoding) => fsPromises.readFile(path, encoding),
};

/** Linux's SYMLOOP_MAX: more hops than this and the kernel gives ELOOP too. */
const MAX_LINK_HOPS = 40;

export async function classifyPath(path: string, fs: HostFs, timeoutMs: number): Promise<PathVerdict> {
  const named = lvFromPath(path);
  if (named !== undefined) {
    return { kind: 'lv', lv: named };
  }
  const deadline = new Deadline(timeoutMs);
  try {
    if (needsLvmLookup(path)) {
      return await activeDeviceMapperLv(path, fs, deadline);
    }
    return await classifyByFilesystem(path, fs, deadline);
  } catch (error) {
    return { kind: 'unknown', why: `cannot tell whether ${path} is an LV: ${reason(error)}` };
  }
}

async function classifyByFilesystem(path: string, fs: HostFs, deadline: Deadline): Promise<PathVerdict> {
  let real: string;
  try {
    real = await deadline.run(fs.realpath(path));
  } catch (error) {
    if (isMissing(error)) {
      return classifyMissing(path, fs, deadline);
    }
    throw error;
  }
  if (real !== path) {
    const named = lvFromPath(real);
    if (named !== undefined) {
      return { kind: 'lv', lv: named };
    }
    if (needsLvmLookup(real)) {
      return activeDeviceMapperLv(real, fs, deadline);
    }
  }
  let stats: { isBlockDevice(): boolean; rdev: number };
  try {
    stats = await deadline.run(fs.stat(real));
  } catch (error) {
    if (isMissing(error)) {
      return { kind: 'not-lv', why: `${path} no longer exists` };
    }
    throw error;
  }
  if (!stats.isBlockDevice()) {
    return { kind: 'not-lv', why: `${real} is not a block device` };
  }
  return blockDeviceLv(real, stats.rdev, fs, deadline);
}

/**
 * A path that does not exist. An inactive LV's /dev/VG/LV is missing, and so is the end of a
 * link to it: follow the links by hand to where they lead, and judge that path by its form.
 */
async function classifyMissing(path: string, fs: HostFs, deadline: Deadline): Promise<PathVerdict> {
  let current = path;
  for (let hop = 0; hop <= MAX_LINK_HOPS; hop += 1) {
    let isLink: boolean;
    try {
      isLink = (await deadline.run(fs.lstat(current))).isSymbolicLink();
    } catch (error) {
      if (!isMissing(error)) throw error;
      return missingTarget(path, current);
    }
    if (!isLink) {
      // realpath failed on a component above this one (a dangling directory link, say).
      throw new Error(`${current} exists but ${path} cannot be resolved`);
    }
    current = posix.resolve(posix.dirname(current), await deadline.run(fs.readlink(current)));
  }
  throw new Error(`more than ${MAX_LINK_HOPS} symbolic links`);
}

function missingTarget(path: string, target: string): PathVerdict {
  const named = lvFromPath(target);
  if (named !== undefined) {
    return { kind: 'lv', lv: named };
  }
  if (needsLvmLookup(target)) {
    return { kind: 'ask-lvm', path: target };
  }
  const where = target === path ? '' : ` (its link leads to ${target})`;
  return { kind: 'not-lv', why: `${path} does not exist${where}` };
}

/**
 * /dev/dm-N, /dev/disk/by-id links and the like: the kernel knows the device-mapper name
 * ("vg-lv", hyphens doubled) of an active LV, which names it without running LVM. Anything
 * else (not active here, not found) is left to LVM.
 */
async function activeDeviceMapperLv(path: string, fs: HostFs, deadline: Deadline): Promise<PathVerdict> {
  try {
    const device = await deadline.run(fs.realpath(path));
    const m = /^\/dev\/(dm-\d+)$/.exec(device);
    if (m) {
      const lv = await lvOfDmDirectory(`/sys/block/${m[1]}/dm`, fs, deadline);
      if (lv !== undefined) return { kind: 'lv', lv };
    }
  } catch {
    // Not resolvable here (an inactive LV has no node): LVM can still tell.
  }
  return { kind: 'ask-lvm', path };
}

/** A block device node found by following links: only device-mapper devices made by LVM are LVs. */
async function blockDeviceLv(real: string, rdev: number, fs: HostFs, deadline: Deadline): Promise<PathVerdict> {
  const { major, minor } = splitDeviceNumber(rdev);
  const dmDirectory = `/sys/dev/block/${major}:${minor}/dm`;
  let uuid: string;
  try {
    uuid = await deadline.run(fs.readFile(`${dmDirectory}/uuid`, 'utf8'));
  } catch (error) {
    if (isMissing(error)) {
      return { kind: 'not-lv', why: `${real} (${major}:${minor}) is not a device-mapper device` };
    }
    throw error;
  }
  if (!uuid.startsWith('LVM-')) {
    return { kind: 'not-lv', why: `${real} (${major}:${minor}) is a device-mapper device not made by LVM` };
  }
  const lv = await lvOfDmDirectory(dmDirectory, fs, deadline);
  if (lv === undefined) {
    throw new Error(`${real} (${major}:${minor}) is an LVM device whose name does not decode to VG and LV`);
  }
  return { kind: 'lv', lv };
}

async function lvOfDmDirectory(directory: string, fs: HostFs, deadline: Deadline): Promise<LvRef | undefined> {
  const [uuid, name] = await Promise.all([
    deadline.run(fs.readFile(`${directory}/uuid`, 'utf8')),
    deadline.run(fs.readFile(`${directory}/name`, 'utf8')),
  ]);
  return uuid.startsWith('LVM-') ? lvFromPath(`/dev/mapper/${name.trim()}`) : undefined;
}

/** Linux's dev_t layout (glibc's major()/minor()), as Node reports it in stats.rdev. */
export function splitDeviceNumber(rdev: number): { major: number; minor: number } {
  const high = Math.floor(rdev / 2 ** 32);
  const low = rdev % 2 ** 32;
  const major = ((low >>> 8) & 0xfff) | ((high & 0xfffff000) >>> 0);
  const minor = (low & 0xff) | ((low >>> 12) & 0xfff00) | ((high & 0xfff) * 2 ** 20);
  return { major, minor };
}

class Deadline {
  private readonly end: number;
  constructor(private readonly timeoutMs: number) {
    this.end = Date.now() + timeoutMs;
  }

  run<T>(operation: Promise<T>): Promise<T> {
    const left = this.end - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the filesystem did not answer within ${this.timeoutMs} ms`)),
        Math.max(0, left),
      );
    });
    // The losing operation may still reject later; that must not become an unhandled rejection.
    operation.catch(() => undefined);
    return Promise.race([operation, timeout]).finally(() => clearTimeout(timer));
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
