#!/usr/bin/env node
import { BUS_ADDRESS_ENV, BUS_NAME, MANAGER_IFACE, OBJECT_PATH } from '../control/names.js';
import type { CallContext, Invocation, Outcome } from './commands.js';
import { commandHelp, EXIT_FINDING, EXIT_OK, EXIT_USAGE, mainHelp, usageLine } from './help.js';
import { parseCommandLine } from './parse.js';

const PROGRAM = 'virt-lvmlockctl';

async function call(member: string, timeoutMs: number, args: string[]): Promise<string> {
  // Loaded only for a call: help, version and usage errors work even if the D-Bus library does not.
  const { BusConnection } = await import('../dbus/bus.js');
  const address = process.env[BUS_ADDRESS_ENV] || 'system';
  const bus = await BusConnection.connect(address, 5000);
  try {
    const [result] = await bus.call(
      { destination: BUS_NAME, path: OBJECT_PATH, interface: MANAGER_IFACE, member, signature: 's'.repeat(args.length), body: args },
      timeoutMs,
    );
    return String(result);
  } finally {
    bus.disconnect();
  }
}

async function run(inv: Invocation, ctx: CallContext): Promise<Outcome> {
  const action = inv.command.action;
  switch (action.kind) {
    case 'dbus': {
      const reply = await ctx.call(action.member, action.timeoutMs, action.dbusArgs ? action.dbusArgs(inv) : inv.args);
      return action.render(reply, inv);
    }
    case 'local':
      return action.run(inv, ctx);
    case 'help':
      // The parser answers help; reaching here is a bug in the table, said plainly.
      throw new Error(`command ${inv.command.name} has no action`);
  }
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(argv);
  switch (parsed.kind) {
    case 'help':
      process.stdout.write(parsed.command ? commandHelp(parsed.command) : mainHelp());
      return EXIT_OK;
    case 'version': {
      const { VERSION } = await import('./version.js');
      process.stdout.write(`${VERSION}\n`);
      return EXIT_OK;
    }
    case 'usage': {
      // With no command at all the whole list helps most; otherwise the one usage line that applies.
      const more = parsed.list ? mainHelp() : `${usageLine(parsed.command)}\n${seeHelp(parsed.command?.name)}\n`;
      process.stderr.write(`${PROGRAM}: ${parsed.message}\n${more}`);
      return EXIT_USAGE;
    }
    case 'run': {
      const outcome = await run(parsed.invocation, { call });
      process.stdout.write(outcome.stdout);
      return outcome.code;
    }
  }
}

function seeHelp(command?: string): string {
  return command ? `see ${PROGRAM} ${command} --help` : `see ${PROGRAM} --help`;
}

// exitCode, not exit(): exit() would cut a large --json output still buffered for a pipe.
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${PROGRAM}: ${(err as Error).message}\n`);
    process.exitCode = EXIT_FINDING;
  },
);
