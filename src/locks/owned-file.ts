import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { OwnedStore } from '../engine/owned.js';

/**
 * The record of the LVs this daemon took, as a small JSON file in the runtime directory. It is
 * written to a temporary name and renamed, so a crash mid-write leaves the old record whole.
 */
export function fileOwnedStore(runtimeDir: string): OwnedStore {
  const file = join(runtimeDir, 'owned-lvs.json');
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw new Error(`${file}: ${(err as Error).message}`);
      }
      const parsed = JSON.parse(text) as { lvs?: unknown };
      if (!Array.isArray(parsed.lvs) || !parsed.lvs.every((lv) => typeof lv === 'string')) {
        throw new Error(`${file}: not a list of LVs`);
      }
      return parsed.lvs as string[];
    },
    async save(lvs) {
      await mkdir(runtimeDir, { recursive: true, mode: 0o755 });
      const temp = `${file}.${process.pid}.tmp`;
      await writeFile(temp, `${JSON.stringify({ lvs })}\n`, { mode: 0o644 });
      await rename(temp, file);
    },
  };
}
