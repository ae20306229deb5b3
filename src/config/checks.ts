/**
 * Rules that relate several keys. They are a pure function of a whole typed config so that they
 * can run on the config that will actually run: the file as read at start, and the file merged
 * with the running restart-only keys on reload.
 */
import { formatDuration } from './duration.js';
import { startSafetyIssues } from './start-safety.js';
import type { Config } from './types.js';

export interface CrossKeyIssue {
  /** Dotted file path of the key the problem is reported at, e.g. ['hook', 'timeout']. */
  path: (string | number)[];
  message: string;
}

export function crossKeyIssues(config: Config): CrossKeyIssue[] {
  const issues: CrossKeyIssue[] = [];
  const report = (path: (string | number)[], message: string) => issues.push({ path, message });
  const included = new Set(config.volumes.includeVgs);
  for (const [index, vg] of config.volumes.excludeVgs.entries()) {
    if (included.has(vg)) {
      report(['volumes', 'exclude_vgs', index], `${JSON.stringify(vg)} is also in volumes.include_vgs; a volume group cannot be both included and excluded`);
    }
  }
  for (const [index, name] of config.peers.allow.entries()) {
    if (!config.peers.hosts.some((h) => h.name === name)) {
      report(['peers', 'allow', index], `${name} is not one of peers.hosts; only configured peers can be allowed`);
    }
  }
  if (config.peers.hosts.length > 0 && config.migration.demoteTimeoutMs >= config.hook.timeoutMs) {
    report(['migration', 'demote_timeout'], `must be shorter than hook.timeout (${formatDuration(config.hook.timeoutMs)}), or the hook gives up first`);
  }
  if (config.hook.timeoutMs <= config.lvm.timeoutMs) {
    report(
      ['hook', 'timeout'],
      `${formatDuration(config.hook.timeoutMs)} is not longer than lvm.timeout (${formatDuration(config.lvm.timeoutMs)}): ` +
        'the hook would give up, and libvirt abort the start, while an LVM command it waits for may still succeed',
    );
  }
  const metricsListen = config.metrics.listen;
  if (metricsListen !== '' && metricsListen === config.peers.listen) {
    report(['metrics', 'listen'], `${metricsListen} is also peers.listen; the metrics endpoint and the peer server need different ports`);
  }
  for (const issue of startSafetyIssues(config.actions)) report(['actions', issue.op], issue.message);
  return issues;
}
