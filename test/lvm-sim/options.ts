/**
 * Command-line parsing the way lvm's getopt_long does it: options may follow positional
 * arguments, short options bundle (`-qy`) or carry their value (`-aey`), long options take
 * `--opt value` or `--opt=value` and may be abbreviated while unambiguous.
 */

export interface OptionSpec {
  /** Key the parsed value is stored under. */
  key: string;
  long: string[];
  short?: string;
  takesValue: boolean;
}

export interface ParsedArgs {
  /** Values of options that take one, in command-line order. */
  values: Map<string, string[]>;
  /** How often each flag was given. */
  counts: Map<string, number>;
  positional: string[];
}

/**
 * A command-line error: getopt's own line and/or lvm's message; lvm then adds
 * "Error during parsing of command line." and exits 3.
 */
export class CommandLineError extends Error {
  constructor(readonly getoptLine: string | undefined, readonly lvmLine?: string) {
    super(getoptLine ?? lvmLine);
  }
}

export const PARSE_FAILED = 'Error during parsing of command line.';

export function parseArgs(tool: string, argv: string[], specs: OptionSpec[]): ParsedArgs {
  const parsed: ParsedArgs = { values: new Map(), counts: new Map(), positional: [] };
  const record = (spec: OptionSpec, value?: string) => {
    parsed.counts.set(spec.key, (parsed.counts.get(spec.key) ?? 0) + 1);
    if (value !== undefined) parsed.values.set(spec.key, [...(parsed.values.get(spec.key) ?? []), value]);
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      parsed.positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq === -1 ? undefined : eq);
      const spec = findLong(tool, name, specs);
      if (spec.takesValue) {
        let value: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
        if (value === undefined) {
          if (i + 1 >= argv.length) throw new CommandLineError(`${tool}: option '--${spec.long[0]}' requires an argument`);
          value = argv[++i];
        }
        record(spec, value);
      } else {
        if (eq !== -1) throw new CommandLineError(`${tool}: option '--${spec.long[0]}' doesn't allow an argument`);
        record(spec);
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j];
        const spec = specs.find((s) => s.short === letter);
        if (!spec) throw new CommandLineError(`${tool}: invalid option -- '${letter}'`);
        if (!spec.takesValue) {
          record(spec);
          continue;
        }
        let value = arg.slice(j + 1);
        if (value === '') {
          if (i + 1 >= argv.length) throw new CommandLineError(`${tool}: option requires an argument -- '${letter}'`);
          value = argv[++i];
        }
        record(spec, value);
        break;
      }
      continue;
    }
    parsed.positional.push(arg);
  }
  return parsed;
}

function findLong(tool: string, name: string, specs: OptionSpec[]): OptionSpec {
  const exact = specs.find((s) => s.long.includes(name));
  if (exact) return exact;
  const prefixed = specs.filter((s) => s.long.some((l) => l.startsWith(name)));
  if (prefixed.length === 1 && name !== '') return prefixed[0];
  if (prefixed.length > 1 && name !== '') throw new CommandLineError(`${tool}: option '--${name}' is ambiguous`);
  throw new CommandLineError(`${tool}: unrecognized option '--${name}'`);
}

export function flag(key: string, long: string[], short?: string): OptionSpec {
  return { key, long, short, takesValue: false };
}

export function valued(key: string, long: string[], short?: string): OptionSpec {
  return { key, long, short, takesValue: true };
}

/** Options every lvm command accepts and the simulator can safely ignore. */
export const COMMON_LVM_OPTIONS: OptionSpec[] = [
  flag('quiet', ['quiet'], 'q'),
  flag('verbose', ['verbose'], 'v'),
  flag('debug', ['debug'], 'd'),
  flag('yes', ['yes'], 'y'),
  flag('nolocking', ['nolocking']),
  flag('nohints', ['nohints']),
  valued('config', ['config']),
  valued('commandprofile', ['commandprofile']),
  valued('profile', ['profile']),
  valued('devices', ['devices']),
  valued('devicesfile', ['devicesfile']),
  valued('driverloaded', ['driverloaded']),
  valued('lockopt', ['lockopt']),
];
