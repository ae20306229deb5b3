import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { OwnedLv, OwnedStore } from '../engine/owned.js';

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
      return parseOwned(file, text);
    },
    async save(records) {
      await mkdir(runtimeDir, { recursive: true, mode: 0o755 });
      const temp = `${file}.${process.pid}.tmp`;
      await writeFile(temp, `${JSON.stringify({ owned: records })}\n`, { mode: 0o644 });
      await rename(temp, file);
    },
  };
}

export function parseOwned(file: string, text: string): OwnedLv[] {
  const parsed = JSON.parse(text) as { owned?: unknown };
  const list = parsed.owned;
  const valid =
    Array.isArray(list) &&
    list.every(
      (r: { lv?: unknown; domain?: unknown; mode?: unknown }) =>
        typeof r === 'object' && r !== null && typeof r.lv === 'string' && (r.domain === undefined || typeof r.domain === 'string') && (r.mode === undefined || r.mode === 'ex' || r.mode === 'sh'),
    );
  if (!valid) throw new Error(`${file}: not a list of owned LVs`);
  return list as OwnedLv[];
}
