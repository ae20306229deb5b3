/**
 * What the end-to-end tests need from the machine. A test that cannot run says so loudly (a
 * console line and a skip with the reason); it never passes silently.
 */
import { constants, existsSync } from 'node:fs';
import { access, readFile, readdir } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'node:test';
import { run } from '../harness/host.js';
import { CLI_MAIN, DAEMON_MAIN, SIM_BIN } from '../harness/paths.js';

/** Programs the harness runs, with the Debian package that provides each. */
export const REQUIRED_PROGRAMS: Record<string, string> = {
  ip: 'iproute2',
  unshare: 'util-linux',
  nsenter: 'util-linux',
  mountpoint: 'util-linux',
  losetup: 'mount',
  mount: 'mount',
  hostname: 'hostname',
  libvirtd: 'libvirt-daemon',
  'qemu-system-x86_64': 'qemu-system-x86',
  'libvirt-dbus': 'libvirt-dbus',
  'dbus-daemon': 'dbus-daemon',
  'dbus-send': 'dbus-bin',
  virsh: 'libvirt-clients',
  openssl: 'openssl',
  perl: 'perl-base',
  date: 'coreutils',
};

/** libvirtd and its tools live in sbin directories that a plain user PATH may lack. */
export function ensureSbinInPath(): void {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const extra of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!dirs.includes(extra)) dirs.push(extra);
  process.env.PATH = dirs.join(delimiter);
}

/** The absolute path of a program found in PATH, or undefined. */
export async function findProgram(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

async function qemuDriverInstalled(): Promise<boolean> {
  // libvirt-daemon-driver-qemu: without it libvirtd has no qemu:///system at all.
  for (const lib of ['/usr/lib', '/usr/lib64', '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu']) {
    if (existsSync(join(lib, 'libvirt/connection-driver/libvirt_driver_qemu.so'))) return true;
  }
  try {
    for (const entry of await readdir('/usr/lib')) {
      if (existsSync(join('/usr/lib', entry, 'libvirt/connection-driver/libvirt_driver_qemu.so'))) return true;
    }
  } catch {
    // No /usr/lib: nothing found.
  }
  return false;
}

async function kernelHasOverlayfs(): Promise<boolean> {
  try {
    if ((await readFile('/proc/filesystems', 'utf8')).split('\n').some((l) => l.trim().endsWith('overlay'))) return true;
  } catch {
    return false;
  }
  // Not registered yet: mount loads the module on first use if the kernel ships it.
  const release = (await readFile('/proc/sys/kernel/osrelease', 'utf8').catch(() => '')).trim();
  for (const ext of ['', '.xz', '.zst', '.gz']) {
    if (existsSync(`/lib/modules/${release}/kernel/fs/overlayfs/overlay.ko${ext}`)) return true;
  }
  return false;
}

/** Root inside a restricted container may still lack the namespaces or loop devices. */
async function capabilityProblems(): Promise<string[]> {
  const problems: string[] = [];
  const ns = await run('unshare', ['--mount', '--uts', '--net', '--propagation', 'private', 'true'], { timeoutMs: 10_000 });
  if (ns.rc !== 0) problems.push(`cannot create mount, UTS and network namespaces here (unshare: ${ns.stderr.trim() || `exit ${ns.rc}`})`);
  const loop = await run('losetup', ['--find'], { timeoutMs: 10_000 });
  if (loop.rc !== 0) problems.push(`no free loop device (losetup --find: ${loop.stderr.trim() || `exit ${loop.rc}`})`);
  return problems;
}

let cached: Promise<string[]> | undefined;

/** Reasons the end-to-end tests cannot run here; empty when everything is in place. */
export function missingRequirements(): Promise<string[]> {
  cached ??= (async () => {
    ensureSbinInPath();
    const missing: string[] = [];
    if (process.platform !== 'linux') missing.push(`Linux is needed (this is ${process.platform})`);
    if (process.getuid?.() !== 0) missing.push('root is needed (network and mount namespaces, loop devices, system-mode libvirtd)');
    for (const [program, pkg] of Object.entries(REQUIRED_PROGRAMS)) {
      if (!(await findProgram(program))) missing.push(`${program} not found (Debian package ${pkg})`);
    }
    if (!(await qemuDriverInstalled())) missing.push('the libvirt QEMU driver is not installed (Debian package libvirt-daemon-driver-qemu)');
    if (!existsSync('/dev/loop-control')) missing.push('no /dev/loop-control: loop devices are not available');
    if (missing.length === 0) missing.push(...(await capabilityProblems()));
    if (!(await kernelHasOverlayfs())) missing.push('the kernel has no overlay filesystem (needed for the per-instance /dev)');
    for (const built of [DAEMON_MAIN, CLI_MAIN, join(SIM_BIN, '../../../dist/test/lvm-sim/main.js')]) {
      if (!existsSync(built)) missing.push(`${built} is missing: build first with npx tsc -p tsconfig.json`);
    }
    return missing;
  })();
  return cached;
}

/**
 * Skips the test, loudly, when the machine lacks something; returns true when it skipped.
 * Set VLE2E_REQUIRE=1 to turn a missing requirement into a failure instead (CI that must run them).
 */
export async function skipUnlessReady(t: TestContext): Promise<boolean> {
  const missing = await missingRequirements();
  if (missing.length === 0) return false;
  const reason = `end-to-end test skipped: ${missing.join('; ')}`;
  if (process.env.VLE2E_REQUIRE === '1') throw new Error(reason);
  console.log(`*** SKIPPED ${t.name}: ${reason}`);
  t.skip(reason);
  return true;
}
