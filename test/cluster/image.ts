/**
 * Builds the hypervisor image once and caches it under CACHE_DIR/image-<hash>/: a Debian 12 root
 * filesystem made by mmdebstrap, configured here (guest-files.ts), packed into a raw ext4 image
 * with `mkfs.ext4 -d` (no loop device), plus the kernel and initrd taken out of its /boot. Both
 * hypervisors boot from this one image through their own qcow2 overlays.
 *
 * The cache key is the candidate version of every package in the list, as the host's apt lists
 * know them for the Debian suites the image is built from (the host's dpkg status and other
 * sources left out), plus the guest files. After an `apt-get update` that brings new versions, the
 * next run builds a new image and drops the old one.
 */
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { mustRunHost, runHost } from '../lvmlockd/host-command.js';
import { AGENT_JS, AGENT_PATH, AGENT_UNIT, ENABLED_UNITS, ETC_HOSTS, FSTAB, MASKED_UNITS, MODULES_LOAD, guestFilesFingerprint, networkFiles } from './guest-files.js';
import { CACHE_DIR } from './paths.js';
import { exists } from '../harness/fs.js';

export interface HypervisorImage {
  /** Raw ext4 root filesystem, the backing file of every overlay. */
  base: string;
  kernel: string;
  initrd: string;
  /** The cache key, one "package version" per line. */
  key: string;
  built: boolean;
  ms: number;
}

export const SUITE = 'bookworm';
/** The Debian suites of the image; the cache key is read from the host's lists for exactly these. */
export const SOURCES = [
  `deb http://deb.debian.org/debian ${SUITE} main`,
  `deb http://deb.debian.org/debian ${SUITE}-updates main`,
  `deb http://deb.debian.org/debian-security ${SUITE}-security main`,
];

/**
 * systemd + D-Bus + udev, the lock stack, libvirt with QEMU, libvirt-dbus, node, a kernel whose
 * initrd has virtio and dm-mod; everything virt-lvmlockd's .deb depends on is here, so that
 * `apt-get install ./virt-lvmlockd_*.deb` in a guest without network needs nothing more.
 */
export const PACKAGES = [
  'systemd', 'systemd-sysv', 'dbus', 'dbus-bin', 'udev', 'kmod', 'iproute2', 'procps', 'iputils-ping',
  'lvm2', 'lvm2-lockd', 'sanlock', 'libvirt-daemon-system', 'libvirt-daemon-driver-qemu', 'libvirt-clients',
  'qemu-system-x86', 'libvirt-dbus', 'nodejs', 'linux-image-cloud-amd64', 'e2fsprogs',
];

const IMAGE_SIZE = '2G';
const QUICK_MS = 60_000;
const MMDEBSTRAP_MS = 20 * 60_000;
const MKFS_MS = 5 * 60_000;


/** "name version" for each package, from the host's apt lists of SOURCES only. */
async function candidateVersions(work: string): Promise<string[]> {
  const list = join(work, 'sources.list');
  await writeFile(list, SOURCES.join('\n') + '\n');
  const opts = ['-o', `Dir::Etc::SourceList=${list}`, '-o', 'Dir::Etc::SourceParts=/dev/null', '-o', 'Dir::Cache::pkgcache=', '-o', 'Dir::Cache::srcpkgcache=', '-o', 'Dir::State::status=/dev/null'];
  const r = await runHost('apt-cache', [...opts, 'show', '--no-all-versions', ...PACKAGES], { timeoutMs: QUICK_MS });
  const found = new Map<string, string>();
  let name: string | undefined;
  for (const line of r.stdout.split('\n')) {
    const p = /^Package: (\S+)/.exec(line);
    if (p) name = p[1];
    const v = /^Version: (\S+)/.exec(line);
    if (v && name && !found.has(name)) found.set(name, v[1]!);
  }
  const missing = PACKAGES.filter((p) => !found.has(p));
  if (missing.length > 0) throw new Error(`the host's apt lists for ${SUITE} know no ${missing.join(', ')} (run apt-get update)`);
  return PACKAGES.map((p) => `${p} ${found.get(p)!}`);
}

async function writeInto(root: string, path: string, text: string, mode = 0o644): Promise<void> {
  const dest = join(root, path);
  await mkdir(dirname(dest), { recursive: true });
  await writeFile(dest, text);
  await chmod(dest, mode);
}

async function mmdebstrap(rootfs: string): Promise<void> {
  // mkfs.ext4 -d copies file owners only when run as root, and mode=root needs root anyway.
  if (process.getuid?.() !== 0) throw new Error('building the hypervisor image needs root (mmdebstrap --mode=root, mkfs.ext4 -d with root-owned files)');
  const args = [
    '--mode=root', '--variant=minbase', `--include=${PACKAGES.join(',')}`,
    '--aptopt=APT::Install-Recommends "false"',
    // No man pages, translations or docs: a third of the size, none of it read by a test.
    '--dpkgopt=path-exclude=/usr/share/man/*', '--dpkgopt=path-exclude=/usr/share/locale/*',
    '--dpkgopt=path-include=/usr/share/locale/locale.alias', '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-include=/usr/share/doc/*/copyright',
    SUITE, rootfs, ...SOURCES,
  ];
  await mustRunHost('mmdebstrap', args, { timeoutMs: MMDEBSTRAP_MS });
}

/** The test-host configuration, written straight into the unpacked root filesystem. */
async function configure(rootfs: string): Promise<void> {
  await writeInto(rootfs, AGENT_PATH, AGENT_JS);
  await writeInto(rootfs, 'etc/systemd/system/testbed-agent.service', AGENT_UNIT);
  for (const [name, text] of Object.entries(networkFiles())) await writeInto(rootfs, `etc/systemd/network/${name}`, text);
  await writeInto(rootfs, 'etc/hosts', ETC_HOSTS);
  await writeInto(rootfs, 'etc/fstab', FSTAB);
  await writeInto(rootfs, 'etc/modules-load.d/softdog.conf', MODULES_LOAD);
  // Hostname and machine id come from the kernel command line, one per host.
  await rm(join(rootfs, 'etc/hostname'), { force: true });
  await writeFile(join(rootfs, 'etc/machine-id'), '');
  await rm(join(rootfs, 'var/lib/dbus/machine-id'), { force: true });
  // libvirt's default network needs dnsmasq, which the image does not have.
  await rm(join(rootfs, 'etc/libvirt/qemu/networks/autostart/default.xml'), { force: true });
  // virt-lvmlockd works on shared VGs: lvm must use lvmlockd.
  const lvmConf = join(rootfs, 'etc/lvm/lvm.conf');
  const conf = await readFile(lvmConf, 'utf8');
  const edited = conf.replace(/^(\s*)# use_lvmlockd = 0$/m, '$1use_lvmlockd = 1');
  if (edited === conf) throw new Error(`${lvmConf}: no "# use_lvmlockd = 0" line to turn on`);
  await writeFile(lvmConf, edited);
  await mustRunHost('systemctl', [`--root=${rootfs}`, 'enable', ...ENABLED_UNITS], { timeoutMs: QUICK_MS });
  await mustRunHost('systemctl', [`--root=${rootfs}`, 'mask', ...MASKED_UNITS], { timeoutMs: QUICK_MS });
}

async function bootFile(rootfs: string, prefix: string): Promise<string> {
  const names = (await readdir(join(rootfs, 'boot'))).filter((f) => f.startsWith(prefix)).sort();
  if (names.length !== 1) throw new Error(`${rootfs}/boot: expected one ${prefix}*, found ${names.join(', ') || 'none'}`);
  return join(rootfs, 'boot', names[0]!);
}

async function build(key: string, work: string, out: string): Promise<void> {
  const rootfs = join(work, 'rootfs');
  await mmdebstrap(rootfs);
  await configure(rootfs);
  await mkdir(out, { recursive: true });
  await copyFile(await bootFile(rootfs, 'vmlinuz-'), join(out, 'vmlinuz'));
  await copyFile(await bootFile(rootfs, 'initrd.img-'), join(out, 'initrd.img'));
  const installed = await mustRunHost('dpkg-query', [`--admindir=${join(rootfs, 'var/lib/dpkg')}`, '-W', '-f=${Package} ${Version}\n'], { timeoutMs: QUICK_MS });
  await writeFile(join(out, 'installed.txt'), installed);
  await mustRunHost('mkfs.ext4', ['-q', '-F', '-L', 'hvroot', '-E', 'root_owner=0:0', '-d', rootfs, join(out, 'base.img'), IMAGE_SIZE], {
    timeoutMs: MKFS_MS,
    env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` },
  });
  await writeFile(join(out, 'key.txt'), key);
}

/** The cached image for the current package versions, built first if needed. */
export async function ensureHypervisorImage(log: (line: string) => void = () => undefined): Promise<HypervisorImage> {
  const t0 = performance.now();
  await mkdir(CACHE_DIR, { recursive: true });
  const work = await mkdtemp(join(CACHE_DIR, 'build-'));
  try {
    const key = [...(await candidateVersions(work)), `guest-files ${guestFilesFingerprint()}`].join('\n') + '\n';
    const dir = join(CACHE_DIR, `image-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`);
    const result = (built: boolean): HypervisorImage => ({
      base: join(dir, 'base.img'), kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), key, built, ms: Math.round(performance.now() - t0),
    });
    const keyFile = join(dir, 'key.txt');
    if ((await exists(keyFile)) && (await readFile(keyFile, 'utf8')) === key) return result(false);
    log(`building the hypervisor image (${PACKAGES.length} packages named, ${SUITE})`);
    const out = join(work, 'out');
    await build(key, work, out);
    await rm(dir, { recursive: true, force: true });
    await rename(out, dir);
    for (const f of await readdir(CACHE_DIR)) {
      if (f.startsWith('image-') && join(CACHE_DIR, f) !== dir) await rm(join(CACHE_DIR, f), { recursive: true, force: true });
    }
    const image = result(true);
    const used = (await stat(image.base)).blocks * 512;
    log(`hypervisor image built in ${(image.ms / 1000).toFixed(1)} s (${(used / 1e6).toFixed(0)} MB used of ${IMAGE_SIZE})`);
    return image;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
