/**
 * The command line of the daemon, virt-lvmlockd, as a pure function:
 *   virt-lvmlockd [-c|--config FILE]      virt-lvmlockd -h|--help      virt-lvmlockd -V|--version
 * Kept apart from src/main.ts so that it is tested without starting anything, and next to the
 * CLI's parser so that both programs follow the same habits (exit 2 and a message for bad usage).
 */

export const DEFAULT_CONFIG = '/etc/virt-lvmlockd/config.yaml';

export type DaemonArgs =
  | { kind: 'run'; configFile: string; explicit: boolean }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'usage'; message: string };

export const DAEMON_OPTIONS = [
  { label: '-c, --config FILE', help: `the configuration file (default ${DEFAULT_CONFIG}; the built-in defaults if that does not exist)` },
  { label: '-h, --help', help: 'print this help and exit' },
  { label: '-V, --version', help: 'print the version and exit' },
] as const;

export function daemonUsage(): string {
  const width = Math.max(...DAEMON_OPTIONS.map((o) => o.label.length));
  return [
    'usage: virt-lvmlockd [-c|--config FILE]',
    '       virt-lvmlockd -h|--help | -V|--version',
    '',
    'options:',
    ...DAEMON_OPTIONS.map((o) => `  ${o.label.padEnd(width)}  ${o.help}`),
    '',
    'exit status:',
    '  0  stopped by a signal (SIGTERM, SIGINT)',
    '  1  start-up failed or a fatal error (systemd restarts the daemon)',
    '  2  bad usage or an invalid configuration file',
    '',
  ].join('\n');
}

export function parseDaemonArgs(argv: readonly string[]): DaemonArgs {
  let configFile = DEFAULT_CONFIG;
  let explicit = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--config' || arg === '-c') {
      const value = argv[++i];
      if (!value) return { kind: 'usage', message: `${arg} needs a file` };
      configFile = value;
      explicit = true;
    } else if (arg.startsWith('--config=')) {
      configFile = arg.slice('--config='.length);
      if (!configFile) return { kind: 'usage', message: '--config needs a file' };
      explicit = true;
    } else if (arg === '--version' || arg === '-V') {
      return { kind: 'version' };
    } else if (arg === '--help' || arg === '-h') {
      return { kind: 'help' };
    } else {
      // "argument" covers both a stray word and an unknown option; the packaged smoke test keys on it.
      return { kind: 'usage', message: `unknown argument ${arg}` };
    }
  }
  return { kind: 'run', configFile, explicit };
}
