/**
 * What a reload runs: the new file's live keys with the running config's restart-only keys,
 * checked as a whole. The checks that relate keys must see this merged config, since a rule
 * can pair a live key with a restart-only one (demote_timeout is only bounded while peers.hosts
 * is set) and the file alone would hide the combination that actually runs.
 */
import { crossKeyIssues } from './checks.js';
import { diffConfig, type ConfigChange } from './diff.js';
import { ConfigError, formatKeyPath } from './errors.js';
import { CONFIG_FILE } from './schema.js';
import type { Config } from './types.js';

/** `next` with every restart-only key at its value in `running`; the schema says which keys those are. Pure. */
export function mergeForReload(running: Config, next: Config): Config {
  const before = running as unknown as Record<string, Record<string, unknown>>;
  const merged = structuredClone(next) as unknown as Record<string, Record<string, unknown>>;
  for (const [name, section] of Object.entries(CONFIG_FILE.sections)) {
    for (const setting of Object.values(section.settings)) {
      if (setting.reload !== 'restart') continue;
      merged[name]![setting.field] = structuredClone(before[name]![setting.field]);
    }
  }
  return merged as unknown as Config;
}

export interface ReloadPlan {
  /** The config to run from now on. */
  config: Config;
  change: ConfigChange;
}

/**
 * The config a reload switches to, or a ConfigError naming `file` when the merged config breaks
 * a rule that relates keys; the caller then keeps the running config. Pure.
 */
export function planReload(running: Config, next: Config, file: string): ReloadPlan {
  const change = diffConfig(running, next);
  const config = mergeForReload(running, next);
  const issues = crossKeyIssues(config);
  if (issues.length > 0) {
    const kept = change.needRestart.length
      ? ` (with ${change.needRestart.join(', ')} kept at the running value until a restart)`
      : '';
    throw new ConfigError(
      file,
      issues.map((issue) => `${formatKeyPath(issue.path)}: ${issue.message}, in the configuration the reload would run${kept}`),
    );
  }
  return { config, change };
}
