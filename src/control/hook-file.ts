import { constants } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';

/**
 * Reads the domain XML the hook hands over in a file (XML too large for one program argument).
 * The daemon runs as root and the path comes over D-Bus, so only a file the hook could have
 * written is accepted: a regular file directly inside the runtime directory, named as the hook
 * names it, owned by an allowed user, not linked elsewhere, within a size cap. The file is
 * removed once read (or refused), so a crashed hook leaves nothing behind.
 */
export interface HookFileRules {
  runtimeDir: string;
  maxBytes: number;
  /** Owners accepted: root, and the daemon's own user when it runs unprivileged (tests). */
  allowedUids: number[];
}

export const HOOK_FILE_MAX_BYTES = 64 * 1024 * 1024;
const HOOK_FILE_NAME = /^hook-xml\.[A-Za-z0-9_-]{1,64}$/;

export class HookFileError extends Error {
  override name = 'HookFileError';
}

export function defaultHookFileRules(runtimeDir: string): HookFileRules {
  const own = process.getuid?.() ?? 0;
  return { runtimeDir, maxBytes: HOOK_FILE_MAX_BYTES, allowedUids: own === 0 ? [0] : [0, own] };
}

/** Where the path must be, checked as text before anything touches the file system. */
export function checkHookFilePath(path: string, runtimeDir: string): string | undefined {
  if (!isAbsolute(path)) return 'it is not an absolute path';
  const name = basename(path);
  if (!HOOK_FILE_NAME.test(name)) return 'it is not named like a hook file (hook-xml.<id>)';
  if (path !== join(resolve(runtimeDir), name)) return `it is not directly inside ${resolve(runtimeDir)}`;
  return undefined;
}

export async function readHookFile(path: string, rules: HookFileRules): Promise<string> {
  const wrongPlace = checkHookFilePath(path, rules.runtimeDir);
  if (wrongPlace) throw new HookFileError(`refusing the hook file ${JSON.stringify(path)}: ${wrongPlace}`);
  try {
    return await readChecked(path, rules);
  } finally {
    // Ours to remove whatever it held: it sits in our directory under our naming.
    await unlink(path).catch(() => undefined);
  }
}

async function readChecked(path: string, rules: HookFileRules): Promise<string> {
  let handle;
  try {
    // No symlink is followed, and a FIFO cannot block the daemon.
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw new HookFileError(`cannot open the hook file ${path}: ${(err as Error).message}`);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new HookFileError(`refusing the hook file ${path}: it is not a regular file`);
    if (!rules.allowedUids.includes(st.uid)) throw new HookFileError(`refusing the hook file ${path}: it is owned by uid ${st.uid}, not by ${rules.allowedUids.join(' or ')}`);
    if (st.nlink !== 1) throw new HookFileError(`refusing the hook file ${path}: it has ${st.nlink} links`);
    if (st.size > rules.maxBytes) throw new HookFileError(`refusing the hook file ${path}: ${st.size} bytes is more than the ${rules.maxBytes} allowed`);
    // The cap is applied again while reading: the size seen by stat is no promise.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(1024 * 1024);
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, total);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > rules.maxBytes) throw new HookFileError(`refusing the hook file ${path}: it holds more than the ${rules.maxBytes} bytes allowed`);
      chunks.push(chunk.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    await handle.close();
  }
}
