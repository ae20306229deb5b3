import type { z } from 'zod';

/**
 * A config file that cannot be used. `issues` holds one "key.path: why" per problem; the
 * message holds the same lines, each prefixed with the file name, ready for a log or a reply.
 */
export class ConfigError extends Error {
  readonly file: string;
  readonly issues: string[];

  constructor(file: string, issues: string[]) {
    super(issues.map((issue) => `${file}: ${issue}`).join('\n'));
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
  }
}

/** "lvm.timeout", "volumes.include_vgs[1]"; empty for the file as a whole. */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const element of path) {
    if (typeof element === 'number') text += `[${element}]`;
    else text += text === '' ? String(element) : `.${String(element)}`;
  }
  return text;
}

/**
 * One line per problem. zod reports all unknown keys of a mapping as one issue; each gets
 * its own line here, so every line names exactly one key.
 */
export function formatIssues(
  issues: readonly z.core.$ZodIssue[],
  unknownKey: (path: readonly PropertyKey[], key: string) => string,
): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        lines.push(`${formatKeyPath([...issue.path, key])}: ${unknownKey(issue.path, key)}`);
      }
      continue;
    }
    const where = formatKeyPath(issue.path);
    lines.push(where === '' ? issue.message : `${where}: ${issue.message}`);
  }
  return lines;
}
