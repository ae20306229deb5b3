import { BUS_ADDRESS_ENV } from '../control/names.js';
import { COMMANDS, HELP_OPTION, type Command, type OptionSpec } from './commands.js';

/** The help texts of virt-lvmlockctl, all made from the command table. */

const PROGRAM = 'virt-lvmlockctl';

/** The exit statuses every command shares; a command's own reason for 1 comes first. */
export const EXIT_OK = 0;
export const EXIT_FINDING = 1;
export const EXIT_USAGE = 2;

function optionSynopsis(o: OptionSpec): string {
  return `[--${o.long}${o.value ? ` ${o.value}` : ''}]`;
}

/** `status [--json]`, `settle DOMAIN`, `help [COMMAND]`. */
export function synopsis(c: Command): string {
  const args = c.args.map((a) => (a.optional ? `[${a.name}]` : a.name));
  return [c.name, ...c.options.map(optionSynopsis), ...args].join(' ');
}

function columns(rows: Array<[string, string]>, indent = '  '): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `${indent}${left.padEnd(width)}  ${right}`.trimEnd());
}

function optionLabel(o: OptionSpec): string {
  const long = `--${o.long}${o.value ? ` ${o.value}` : ''}`;
  return o.short ? `-${o.short}, ${long}` : `    ${long}`;
}

/** The usage line(s) shown with a usage error: one command's, or the list's first line. */
export function usageLine(command?: Command): string {
  return command ? `usage: ${PROGRAM} ${synopsis(command)}` : `usage: ${PROGRAM} COMMAND [OPTION...] [ARG...]`;
}

export function mainHelp(commands: readonly Command[] = COMMANDS): string {
  return [
    usageLine(),
    `       ${PROGRAM} -h|--help | -V|--version`,
    '',
    'commands:',
    ...columns(commands.map((c) => [synopsis(c), c.summary])),
    '',
    'options:',
    ...columns([
      ['-h, --help', `this list; ${PROGRAM} COMMAND --help (or ${PROGRAM} help COMMAND) explains one command`],
      ['-V, --version', 'print the version and exit'],
    ]),
    '',
    'exit status:',
    ...exitLines(),
    '',
    `The daemon is reached on the system bus, or at the address in ${BUS_ADDRESS_ENV}.`,
    '',
  ].join('\n');
}

function exitLines(command?: Command): string[] {
  const daemon = 'the daemon could not be reached, or refused or failed the call';
  const ones = command
    ? [command.exit1, command.action.kind === 'dbus' ? daemon : undefined]
    : ['a finding or a refusal: problems found (reconcile), the daemon unreachable, or a call refused or failed'];
  const rows: Array<[string, string]> = [[`${EXIT_OK}`, 'success']];
  for (const reason of ones) if (reason) rows.push([`${EXIT_FINDING}`, reason]);
  rows.push([`${EXIT_USAGE}`, 'bad usage: an unknown command or option, a missing or extra argument']);
  return columns(rows);
}

export function commandHelp(command: Command): string {
  const lines = [usageLine(command), '', ...wrap(command.description, 78), ''];
  if (command.args.length > 0) {
    lines.push('arguments:', ...columns(command.args.map((a) => [a.name, a.help])), '');
  }
  lines.push('options:', ...columns([...command.options, HELP_OPTION].map((o) => [optionLabel(o), o.help])), '');
  lines.push('exit status:', ...exitLines(command), '');
  return lines.join('\n');
}

function wrap(paragraph: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of paragraph.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}
