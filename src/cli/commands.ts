import { formatStatus, type StatusJson } from './format.js';

/**
 * The command table of virt-lvmlockctl: the one place that names each command, its arguments,
 * options, help and what it does. The parser, the help texts and the completion test all read
 * it, so they cannot disagree; a new command is one entry here (plus its completion words, which
 * a unit test holds to this table). A command whose options change what it asks the daemon
 * (status --cluster) or that does more than one call (diagnose) is a 'local' action.
 */

export interface OptionSpec {
  /** Without the dashes: 'json' is --json. */
  long: string;
  short?: string;
  /** The value's placeholder (FILE) if the option takes one; a flag otherwise. */
  value?: string;
  help: string;
}

export interface ArgSpec {
  name: string;
  optional?: boolean;
  /** What the shell completes here: names of libvirt domains, or of commands (for help). */
  complete?: 'domain' | 'command';
  help: string;
}

export interface Invocation {
  command: Command;
  args: string[];
  /** By long name; true for a flag. */
  options: Record<string, string | true>;
}

/** What a command prints on stdout and its exit status (1: a finding or a refusal). */
export interface Outcome {
  stdout: string;
  code: 0 | 1;
}

export interface CallContext {
  /** One call of the daemon's manager interface, all arguments strings. */
  call(member: string, timeoutMs: number, args: string[]): Promise<string>;
}

export type Action =
  /** One D-Bus call: its arguments are the command's (or dbusArgs'), its reply goes to render. */
  | { kind: 'dbus'; member: string; timeoutMs: number; dbusArgs?: (inv: Invocation) => string[]; render: (reply: string, inv: Invocation) => Outcome }
  /** Work done here, which may call the daemon any number of times. */
  | { kind: 'local'; run: (inv: Invocation, ctx: CallContext) => Promise<Outcome> }
  /** Answered by the parser and the help texts. */
  | { kind: 'help' };

export interface Command {
  name: string;
  args: ArgSpec[];
  options: OptionSpec[];
  /** One line for the command list. */
  summary: string;
  /** The text of `COMMAND --help`, one paragraph (wrapped there). */
  description: string;
  /** When this command exits 1 (a finding or a refusal); for a D-Bus command, the help adds "the daemon could not be reached". */
  exit1?: string;
  action: Action;
}

/** Every command takes this one; the parser answers it before anything else. */
export const HELP_OPTION: OptionSpec = { long: 'help', short: 'h', help: 'print this help and exit' };
export const JSON_OPTION: OptionSpec = { long: 'json', help: "print the daemon's answer as JSON, for scripts" };

const text = (reply: string): Outcome => ({ stdout: `${reply}\n`, code: 0 });

interface ReconcileJson {
  domains: number;
  took: string[];
  released: string[];
  problems: string[];
  ms: number;
}

function renderReconcile(reply: string, inv: Invocation): Outcome {
  const r = JSON.parse(reply) as ReconcileJson;
  // Problems are things the daemon could not fix: scripts must see them, in either format.
  const code = r.problems.length > 0 ? 1 : 0;
  if (inv.options.json) return { stdout: `${reply}\n`, code };
  const lines = [
    `reconciled ${r.domains} running domains in ${r.ms} ms: took ${r.took.join(', ') || 'nothing'}; released ${r.released.join(', ') || 'nothing'}`,
    ...r.problems.map((p) => `problem: ${p}`),
  ];
  return { stdout: `${lines.join('\n')}\n`, code };
}

export const COMMANDS: readonly Command[] = [
  {
    name: 'status',
    args: [],
    options: [JSON_OPTION],
    summary: 'the lock table: each LV, its mode, domain and phase',
    description:
      "Print the daemon's lock table: each LV, its mode and the mode wanted, its domain and the domain's phase " +
      '(starting, running, incoming, migrating-out, releasing), the peer of a migration, and how long it has held. ' +
      'LVs held that the daemon did not take show as "held, not ours".',
    action: { kind: 'dbus', member: 'Status', timeoutMs: 10_000, render: (reply, inv) => (inv.options.json ? text(reply) : { stdout: formatStatus(JSON.parse(reply) as StatusJson), code: 0 }) },
  },
  {
    name: 'reconcile',
    args: [],
    options: [JSON_OPTION],
    summary: 'compare running domains with lvmlockd now and fix what can be fixed',
    description:
      'Compare the running domains with what lvmlockd holds, now: take the locks that are missing and release those ' +
      'the daemon took for domains that are gone. What cannot be fixed is printed as a problem.',
    exit1: 'problems remain that the daemon could not fix',
    action: { kind: 'dbus', member: 'Reconcile', timeoutMs: 300_000, render: renderReconcile },
  },
  {
    name: 'reload',
    args: [],
    options: [],
    summary: "reload the daemon's configuration (like systemctl reload virt-lvmlockd)",
    description:
      "Reload the daemon's configuration file. An invalid file is refused and the running configuration stays; " +
      'keys that need a restart keep their running value.',
    exit1: 'the new configuration was refused',
    action: { kind: 'dbus', member: 'Reload', timeoutMs: 30_000, render: text },
  },
  {
    name: 'migrate-out',
    args: [{ name: 'DOMAIN', complete: 'domain', help: 'the name or UUID of a domain running here' }],
    options: [],
    summary: "demote DOMAIN's exclusive locks to shared before a migration no peer daemon will ask for",
    description:
      "On the source host, before a migration that no peer daemon will ask for (clusters without peers, or tools that " +
      "orchestrate migrations): demote DOMAIN's exclusive locks to shared. A source demoted this way that never sees " +
      'a migration takes its exclusive locks back by itself after a while. Afterwards, run settle on each host.',
    exit1: 'the demotion was refused (the message says why)',
    action: { kind: 'dbus', member: 'MigrateOut', timeoutMs: 120_000, render: text },
  },
  {
    name: 'settle',
    args: [{ name: 'DOMAIN', complete: 'domain', help: 'the name or UUID of the domain' }],
    options: [],
    summary: "take DOMAIN's own lock modes back if it runs here, or release its locks if not",
    description:
      "After a migration done with migrate-out, on each host: take DOMAIN's own lock modes back where it runs, " +
      'release its locks where it does not.',
    exit1: 'the locks could not be settled (the message says why)',
    action: { kind: 'dbus', member: 'Settle', timeoutMs: 120_000, render: text },
  },
  {
    name: 'version',
    args: [],
    options: [],
    summary: "the CLI's version",
    description: 'Print the version of virt-lvmlockctl (the same as --version).',
    action: {
      kind: 'local',
      run: async () => {
        const { VERSION } = await import('./version.js');
        return text(VERSION);
      },
    },
  },
  {
    name: 'help',
    args: [{ name: 'COMMAND', optional: true, complete: 'command', help: 'the command to explain' }],
    options: [],
    summary: 'this list, or the help of one command',
    description: 'Print the list of commands, or the help of COMMAND (the same as COMMAND --help).',
    action: { kind: 'help' },
  },
];

export function findCommand(name: string, commands: readonly Command[] = COMMANDS): Command | undefined {
  return commands.find((c) => c.name === name);
}
