/**
 * Builds the guest kernel + initramfs once and caches them under CACHE_DIR/image-<hash>/, keyed by
 * the versions of the Debian packages they come from (kernel, busybox-static, lvm2, lvm2-lockd,
 * sanlock) and by the guest's own files. A changed key builds a new image and drops the old one.
 *
 * The kernel (and busybox-static when it is not installed) comes from `apt-get download`, unpacked
 * with `dpkg-deb -x`, never installed. lvm, lvmlockd, lvmlockctl, sanlock and dmsetup are the host's
 * own binaries, copied with the libraries ldd names. No root needed once the packages are there.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { createGzip } from 'node:zlib';
import { CLOSE_HELPER, GROUP, GUEST_BINARIES, GUEST_INIT, GUEST_MODULES, LVM_COMMAND_LINKS, LVM_CONF, OPEN_HELPER, PASSWD, guestFilesFingerprint } from './guest-files.js';
import { finished, mustRunHost, runHost } from './host-command.js';
import { CACHE_DIR, DEBS_DIR } from './paths.js';
import { exists } from '../harness/fs.js';

export interface GuestImage {
  kernel: string;
  initrd: string;
  /** The cache key, one "package version" per line. */
  key: string;
  /** Whether this call built it (false: found in the cache). */
  built: boolean;
  ms: number;
}

interface PackageVersion {
  name: string;
  version: string;
}

const KERNEL_META = 'linux-image-amd64';
const INSTALLED_PACKAGES = ['lvm2', 'lvm2-lockd', 'sanlock'];
const SBIN_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
const QUICK_MS = 30_000;
const DOWNLOAD_MS = 10 * 60_000;
const UNPACK_MS = 5 * 60_000;
const LOCK_WAIT_MS = 15 * 60_000;


async function installedVersion(pkg: string): Promise<string | undefined> {
  const r = await runHost('dpkg-query', ['-W', '-f=${db:Status-Abbrev} ${Version}', pkg], { timeoutMs: QUICK_MS });
  if (r.rc !== 0) return undefined;
  const m = /^ii\s+(\S+)/.exec(r.stdout);
  return m?.[1];
}

/** Fields of the candidate version of a package in the local apt lists, or undefined if apt does not know it. */
async function aptShow(pkg: string): Promise<Record<string, string> | undefined> {
  const r = await runHost('apt-cache', ['show', '--no-all-versions', pkg], { timeoutMs: QUICK_MS });
  if (r.rc !== 0 || r.stdout.trim() === '') return undefined;
  const fields: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^([A-Za-z-]+): (.*)$/.exec(line);
    if (m) fields[m[1]!] ??= m[2]!;
  }
  return fields;
}

async function debFields(deb: string): Promise<PackageVersion> {
  const out = await mustRunHost('dpkg-deb', ['-f', deb, 'Package', 'Version'], { timeoutMs: QUICK_MS });
  const name = /^Package: (.*)$/m.exec(out)?.[1];
  const version = /^Version: (.*)$/m.exec(out)?.[1];
  if (!name || !version) throw new Error(`${deb}: dpkg-deb -f shows no Package/Version`);
  return { name, version };
}

/** The cached .deb of exactly this package version, if any. */
async function cachedDeb(pkg: PackageVersion): Promise<string | undefined> {
  if (!(await exists(DEBS_DIR))) return undefined;
  for (const f of await readdir(DEBS_DIR)) {
    if (!f.startsWith(`${pkg.name}_`) || !f.endsWith('.deb')) continue;
    const fields = await debFields(join(DEBS_DIR, f));
    if (fields.name === pkg.name && fields.version === pkg.version) return join(DEBS_DIR, f);
  }
  return undefined;
}

async function downloadDeb(pkg: PackageVersion): Promise<string> {
  const cached = await cachedDeb(pkg);
  if (cached) return cached;
  await mkdir(DEBS_DIR, { recursive: true });
  await mustRunHost('apt-get', ['download', `${pkg.name}=${pkg.version}`], { cwd: DEBS_DIR, timeoutMs: DOWNLOAD_MS });
  const got = await cachedDeb(pkg);
  if (!got) throw new Error(`apt-get download ${pkg.name}=${pkg.version} left no matching .deb in ${DEBS_DIR}`);
  return got;
}

/** The kernel package the metapackage points to; without apt lists, the newest cached kernel .deb. */
async function kernelPackage(): Promise<PackageVersion> {
  const meta = await aptShow(KERNEL_META);
  const target = meta?.Depends?.split(/[ ,|]/)[0];
  if (target) {
    const version = (await aptShow(target))?.Version;
    if (version) return { name: target, version };
  }
  const debs = (await exists(DEBS_DIR)) ? (await readdir(DEBS_DIR)).filter((f) => /^linux-image-\d.*-amd64_.*\.deb$/.test(f)).sort() : [];
  const newest = debs.at(-1);
  if (newest) return debFields(join(DEBS_DIR, newest));
  throw new Error(`cannot find the guest kernel: apt knows no ${KERNEL_META} (run apt-get update) and ${DEBS_DIR} holds no kernel .deb`);
}

interface Sources {
  kernel: PackageVersion;
  busybox: PackageVersion & { installed: boolean };
  installed: PackageVersion[];
}

async function resolveSources(): Promise<Sources> {
  const installed: PackageVersion[] = [];
  const missing: string[] = [];
  for (const name of INSTALLED_PACKAGES) {
    const version = await installedVersion(name);
    if (version) installed.push({ name, version });
    else missing.push(name);
  }
  if (missing.length > 0) throw new Error(`Debian packages not installed on this host: ${missing.join(', ')} (apt-get install ${missing.join(' ')})`);
  const bbInstalled = await installedVersion('busybox-static');
  let busybox: Sources['busybox'];
  if (bbInstalled) {
    busybox = { name: 'busybox-static', version: bbInstalled, installed: true };
  } else {
    const version = (await aptShow('busybox-static'))?.Version;
    if (!version) throw new Error('busybox-static is neither installed nor known to apt (apt-get update; apt-get install busybox-static)');
    busybox = { name: 'busybox-static', version, installed: false };
  }
  return { kernel: await kernelPackage(), busybox, installed };
}

function cacheKey(s: Sources): string {
  const files = createHash('sha256').update(guestFilesFingerprint()).digest('hex').slice(0, 16);
  return [`kernel ${s.kernel.name} ${s.kernel.version}`, `${s.busybox.name} ${s.busybox.version}`, ...s.installed.map((p) => `${p.name} ${p.version}`), `guest-files ${files}`].join('\n') + '\n';
}

async function findBinary(name: string): Promise<string> {
  for (const dir of SBIN_DIRS) {
    const p = join(dir, name);
    if (await exists(p)) return p;
  }
  throw new Error(`${name} not found in ${SBIN_DIRS.join(', ')} (install lvm2, lvm2-lockd, sanlock)`);
}

/** Libraries (and the dynamic loader) that ldd lists for these binaries, as absolute host paths. */
async function sharedLibraries(binaries: string[]): Promise<string[]> {
  const out = await mustRunHost('ldd', binaries, { timeoutMs: QUICK_MS });
  const libs = new Set<string>();
  for (const line of out.split('\n')) {
    const arrow = /=>\s+(\/\S+)/.exec(line);
    if (arrow) libs.add(arrow[1]!);
    const loader = /^\s+(\/\S*ld-linux\S*)\s/.exec(line);
    if (loader) libs.add(loader[1]!);
  }
  if (![...libs].some((l) => l.includes('ld-linux'))) throw new Error(`ldd ${binaries.join(' ')} names no dynamic loader`);
  return [...libs].sort();
}

/** Copies a host file to the same absolute path under root (following symlinks). */
async function copyInto(root: string, hostPath: string, mode?: number): Promise<void> {
  const dest = join(root, hostPath);
  await mkdir(dirname(dest), { recursive: true });
  await copyFile(hostPath, dest);
  if (mode !== undefined) await chmod(dest, mode);
}

async function writeExecutable(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
  await chmod(path, 0o755);
}

async function walk(dir: string, onFile: (path: string) => void): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await walk(p, onFile);
    else onFile(p);
  }
}

/** Module name -> .ko path in the unpacked kernel; lvm names modules with '-' or '_' alike. */
async function moduleIndex(modulesDir: string): Promise<Map<string, string>> {
  const index = new Map<string, string>();
  const compressed: string[] = [];
  await walk(join(modulesDir, 'kernel'), (p) => {
    if (p.endsWith('.ko')) index.set(basename(p, '.ko').replace(/-/g, '_'), p);
    else if (/\.ko\.(xz|zst|gz)$/.test(p)) compressed.push(p);
  });
  if (index.size === 0 && compressed.length > 0) throw new Error(`the kernel's modules are compressed (${basename(compressed[0]!)}); this image builder expects plain .ko files`);
  return index;
}

/** The wanted modules and everything they depend on, by `modinfo -F depends`. */
async function moduleClosure(index: Map<string, string>, wanted: string[]): Promise<string[]> {
  const paths = new Set<string>();
  const queue = wanted.map((m) => m.replace(/-/g, '_'));
  const seen = new Set<string>();
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const path = index.get(name);
    if (!path) throw new Error(`kernel module ${name} is not in the kernel package (built in, or misnamed?)`);
    paths.add(path);
    const deps = (await mustRunHost('modinfo', ['-F', 'depends', path], { timeoutMs: QUICK_MS })).trim();
    for (const d of deps.split(',')) if (d.trim()) queue.push(d.trim().replace(/-/g, '_'));
  }
  return [...paths];
}

/** newc cpio of the whole tree, owned by root whoever builds it, gzip-compressed by this process. */
async function packInitramfs(root: string, output: string): Promise<void> {
  const names: string[] = ['.'];
  const visit = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      names.push(`./${relative(root, p)}`);
      if (entry.isDirectory()) await visit(p);
    }
  };
  await visit(root);
  const gzip = createGzip({ level: 1 });
  const file = createWriteStream(output);
  gzip.pipe(file);
  const r = await runHost('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0'], { cwd: root, input: names.join('\n') + '\n', stdoutTo: gzip, timeoutMs: 5 * 60_000 });
  gzip.end();
  await finished(file);
  if (r.rc !== 0 || r.timedOut) throw new Error(`cpio -o -H newc in ${root}: ${r.timedOut ? 'timed out' : `exit ${r.rc}`}: ${r.stderr.trim()}`);
}

async function buildImage(sources: Sources, key: string, work: string, out: string): Promise<void> {
  const root = join(work, 'root');
  for (const d of ['bin', 'sbin', 'etc/lvm', 'proc', 'sys', 'dev', 'run', 'tmp', 'channel', 'var/log', 'root']) await mkdir(join(root, d), { recursive: true });

  // Kernel + modules from the kernel .deb.
  const kdeb = await downloadDeb(sources.kernel);
  const kpkg = join(work, 'kpkg');
  await mustRunHost('dpkg-deb', ['-x', kdeb, kpkg], { timeoutMs: UNPACK_MS });
  const kvers = await readdir(join(kpkg, 'lib/modules'));
  if (kvers.length !== 1) throw new Error(`${kdeb}: expected one lib/modules/<version>, found ${kvers.join(', ') || 'none'}`);
  const kver = kvers[0]!;
  const kmods = join(kpkg, 'lib/modules', kver);
  const index = await moduleIndex(kmods);
  const guestMods = join(root, 'lib/modules', kver);
  for (const ko of await moduleClosure(index, GUEST_MODULES)) {
    const dest = join(guestMods, relative(kmods, ko));
    await mkdir(dirname(dest), { recursive: true });
    await copyFile(ko, dest);
  }
  for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) {
    if (await exists(join(kmods, f))) await copyFile(join(kmods, f), join(guestMods, f));
  }
  await mustRunHost('depmod', ['-b', root, kver], { timeoutMs: 60_000, env: { PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } });
  await mkdir(out, { recursive: true });
  await copyFile(join(kpkg, 'boot', `vmlinuz-${kver}`), join(out, 'vmlinuz'));
  await rm(kpkg, { recursive: true, force: true });

  // busybox: the installed static binary, or the one in the downloaded .deb.
  let busybox = '/bin/busybox';
  if (!sources.busybox.installed) {
    const bpkg = join(work, 'bbpkg');
    await mustRunHost('dpkg-deb', ['-x', await downloadDeb(sources.busybox), bpkg], { timeoutMs: UNPACK_MS });
    busybox = join(bpkg, 'bin/busybox');
  } else if (!(await exists(busybox))) {
    throw new Error('busybox-static is installed but /bin/busybox is missing');
  }
  await copyFile(busybox, join(root, 'bin/busybox'));
  await chmod(join(root, 'bin/busybox'), 0o755);
  for (const applet of (await mustRunHost(busybox, ['--list'], { timeoutMs: QUICK_MS })).split('\n')) {
    if (applet && applet !== 'busybox' && !(await exists(join(root, 'bin', applet)))) await symlink('busybox', join(root, 'bin', applet));
  }

  // The host's lvm2 / lvmlockd / sanlock binaries and their libraries.
  const binaries = await Promise.all(GUEST_BINARIES.map(findBinary));
  for (const b of binaries) await copyFile(b, join(root, 'sbin', basename(b))).then(() => chmod(join(root, 'sbin', basename(b)), 0o755));
  for (const link of LVM_COMMAND_LINKS) await symlink('lvm', join(root, 'sbin', link));
  for (const lib of await sharedLibraries(binaries)) await copyInto(root, lib);

  await writeExecutable(join(root, 'init'), GUEST_INIT);
  await writeExecutable(join(root, 'sbin/testbed-open'), OPEN_HELPER);
  await writeExecutable(join(root, 'sbin/testbed-close'), CLOSE_HELPER);
  await writeFile(join(root, 'etc/lvm/lvm.conf'), LVM_CONF);
  await writeFile(join(root, 'etc/passwd'), PASSWD);
  await writeFile(join(root, 'etc/group'), GROUP);

  await packInitramfs(root, join(out, 'initramfs.gz'));
  await writeFile(join(out, 'key.txt'), key);
}

/** An exclusive build lock: one builder at a time; a lock left by a dead process is taken over. */
async function withBuildLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = join(CACHE_DIR, 'build.lock');
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const h = await open(lock, 'wx');
      await h.writeFile(String(process.pid));
      await h.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      let alive = false;
      try {
        if (owner > 0) process.kill(owner, 0);
        alive = owner > 0;
      } catch {
        alive = false;
      }
      if (!alive) {
        await rm(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${lock}: still held by process ${owner} after ${LOCK_WAIT_MS / 60_000} min`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

/** Removes images and kernel .debs that belong to other keys. */
async function dropStale(keepImage: string, keep: Sources): Promise<void> {
  for (const f of await readdir(CACHE_DIR)) {
    if (f.startsWith('image-') && join(CACHE_DIR, f) !== keepImage) await rm(join(CACHE_DIR, f), { recursive: true, force: true });
    if (f.startsWith('build-')) await rm(join(CACHE_DIR, f), { recursive: true, force: true });
  }
  if (!(await exists(DEBS_DIR))) return;
  for (const f of await readdir(DEBS_DIR)) {
    if (!f.endsWith('.deb')) continue;
    const fields = await debFields(join(DEBS_DIR, f)).catch(() => undefined);
    const wanted = [keep.kernel, keep.busybox].some((p) => fields?.name === p.name && fields.version === p.version);
    if (!wanted) await rm(join(DEBS_DIR, f), { force: true });
  }
}

/** The cached image for the current package versions, built first if needed. */
export async function ensureGuestImage(log: (line: string) => void = () => undefined): Promise<GuestImage> {
  const t0 = performance.now();
  await mkdir(CACHE_DIR, { recursive: true });
  const sources = await resolveSources();
  const key = cacheKey(sources);
  const dir = join(CACHE_DIR, `image-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`);
  const ready = async (): Promise<boolean> =>
    (await exists(join(dir, 'key.txt'))) && (await readFile(join(dir, 'key.txt'), 'utf8')) === key && (await exists(join(dir, 'vmlinuz'))) && (await exists(join(dir, 'initramfs.gz')));
  const result = (built: boolean): GuestImage => ({ kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initramfs.gz'), key, built, ms: Math.round(performance.now() - t0) });

  if (await ready()) return result(false);
  return withBuildLock(async () => {
    if (await ready()) return result(false);
    log(`building the guest image (${key.trim().split('\n').join('; ')})`);
    const work = await mkdtemp(join(CACHE_DIR, 'build-'));
    try {
      const out = join(work, 'out');
      await buildImage(sources, key, work, out);
      await rm(dir, { recursive: true, force: true });
      await rename(out, dir);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    await dropStale(dir, sources);
    const sizes = `vmlinuz ${((await stat(join(dir, 'vmlinuz'))).size / 1e6).toFixed(1)} MB, initramfs ${((await stat(join(dir, 'initramfs.gz'))).size / 1e6).toFixed(1)} MB`;
    const image = result(true);
    log(`guest image built in ${(image.ms / 1000).toFixed(1)} s: ${sizes}`);
    return image;
  });
}
