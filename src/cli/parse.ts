import { COMMANDS, findCommand, HELP_OPTION, type Command, type Invocation, type OptionSpec } from './commands.js';

/**
 * The command line of virt-lvmlockctl, as a pure function of argv and the command table:
 *   virt-lvmlockctl [-h|--help|-V|--version]
 *   virt-lvmlockctl COMMAND [OPTION...] [ARG...]      (options and arguments in any order, -- ends options)
 *   virt-lvmlockctl help [COMMAND]
 * A command's options come after it; --help anywhere after it asks for that command's help and wins
 * over any other mistake on the line, so that a half-typed command can still be explained.
 */
export type Parsed =
  | { kind: 'run'; invocation: Invocation }
  /** The help of one command, or the list of commands. */
  | { kind: 'help'; command?: Command }
  | { kind: 'version' }
  /** Exit 2: message says what was wrong; command, when known, selects the usage line to show; list asks for the whole list. */
  | { kind: 'usage'; message: string; command?: Command; list?: true };

export function parseCommandLine(argv: readonly string[], commands: readonly Command[] = COMMANDS): Parsed {
  if (argv.length === 0) return { kind: 'usage', message: 'no command given', list: true };
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h') {
    return rest.length === 0 ? { kind: 'help' } : { kind: 'usage', message: `${first} takes no arguments, got ${rest[0]}` };
  }
  if (first === '--version' || first === '-V') {
    return rest.length === 0 ? { kind: 'version' } : { kind: 'usage', message: `${first} takes no arguments, got ${rest[0]}` };
  }
  if (first.startsWith('-') && first !== '-') {
    const owner = commands.find((c) => c.options.some((o) => matches(o, first)));
    const hint = owner ? ` (a command's options come after it: virt-lvmlockctl ${owner.name} ${first})` : '';
    return { kind: 'usage', message: `unknown option ${first}${hint}` };
  }
  const command = findCommand(first, commands);
  if (!command) return { kind: 'usage', message: `unknown command ${first}` };
  const parsed = parseCommandArgs(command, rest);
  if (parsed.kind !== 'run' || command.action.kind !== 'help') return parsed;
  // help [COMMAND]: the topic must be a command, like the word after --help would be.
  const topic = parsed.invocation.args[0];
  if (topic === undefined) return { kind: 'help' };
  const target = findCommand(topic, commands);
  return target ? { kind: 'help', command: target } : { kind: 'usage', message: `unknown command ${topic}`, command };
}

function matches(option: OptionSpec, word: string): boolean {
  const name = word.split('=', 1)[0];
  return name === `--${option.long}` || (option.short !== undefined && name === `-${option.short}`);
}

function parseCommandArgs(command: Command, words: readonly string[]): Parsed {
  if (words.some((w, i) => (w === '--help' || w === '-h') && !words.slice(0, i).includes('--'))) return { kind: 'help', command };
  const options: Record<string, string | true> = {};
  const args: string[] = [];
  const usage = (message: string): Parsed => ({ kind: 'usage', message, command });
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    if (word === '--') {
      args.push(...words.slice(i + 1));
      break;
    }
    if (!word.startsWith('-') || word === '-') {
      args.push(word);
      continue;
    }
    const option = [HELP_OPTION, ...command.options].find((o) => matches(o, word));
    if (!option) return usage(`unknown option ${word.split('=', 1)[0]} for ${command.name}`);
    const eq = word.indexOf('=');
    if (option.value === undefined) {
      if (eq >= 0) return usage(`--${option.long} takes no value`);
      options[option.long] = true;
    } else if (eq >= 0) {
      options[option.long] = word.slice(eq + 1);
    } else {
      const value = words[i + 1];
      if (value === undefined) return usage(`${word} needs a value (${option.value})`);
      options[option.long] = value;
      i++;
    }
  }
  const required = command.args.filter((a) => !a.optional);
  if (args.length < required.length) return usage(`missing ${required.slice(args.length).map((a) => a.name).join(' ')}`);
  if (args.length > command.args.length) return usage(`unexpected argument ${args[command.args.length]}`);
  const empty = args.findIndex((a) => a === '');
  if (empty >= 0) return usage(`${command.args[empty].name} is empty`);
  return { kind: 'run', invocation: { command, args, options } };
}
