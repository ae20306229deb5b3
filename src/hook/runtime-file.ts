import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

let publishedDir: string | undefined;

/**
 * The runtime directory this process last published the hook settings in: the one place the
 * hook writes large domain XML to, so the daemon accepts hook files from there only.
 */
export function publishedHookRuntimeDir(): string | undefined {
  return publishedDir;
}

/**
 * What the hook script needs to know, published where it can read it without any process start:
 * which ops it must forward and how long to wait. libvirt strips the hook's environment, so a file
 * in a fixed directory is the only channel that works. The same directory receives the hook's
 * large domain XML files (see control/hook-file.ts), so it is made root-only-writable (0755).
 */
export async function writeHookRuntimeFile(dir: string, gatedOps: string[], timeoutMs: number): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const file = join(dir, 'hook.conf');
  const tmp = `${file}.${process.pid}.tmp`;
  const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
  await writeFile(tmp, `ops=${gatedOps.join(' ')}\ntimeout=${seconds}\n`, { mode: 0o644 });
  await rename(tmp, file);
  publishedDir = resolve(dir);
  return file;
}
