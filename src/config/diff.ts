import { isDeepStrictEqual } from 'node:util';
import { CONFIG_FILE } from './schema.js';
import type { Config } from './types.js';

/** What changed between two configs, as dotted file keys ("lvm.timeout"), split by what a reload can do. */
export interface ConfigChange {
  /** Changed keys a reload applies. */
  applied: string[];
  /** Changed keys that keep their old value until the daemon restarts. */
  needRestart: string[];
}

/** Walks the schema, so a key's reload class is read from the one place it is declared. */
export function diffConfig(oldConfig: Config, newConfig: Config): ConfigChange {
  const change: ConfigChange = { applied: [], needRestart: [] };
  const before = oldConfig as unknown as Record<string, Record<string, unknown>>;
  const after = newConfig as unknown as Record<string, Record<string, unknown>>;
  for (const [name, section] of Object.entries(CONFIG_FILE.sections)) {
    for (const [key, setting] of Object.entries(section.settings)) {
      if (isDeepStrictEqual(before[name]?.[setting.field], after[name]?.[setting.field])) continue;
      (setting.reload === 'live' ? change.applied : change.needRestart).push(`${name}.${key}`);
    }
  }
  return change;
}
