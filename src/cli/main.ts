#!/usr/bin/env node
import { BusConnection, DbusCallError } from '../dbus/bus.js';
import { BUS_ADDRESS_ENV, BUS_NAME, MANAGER_IFACE, OBJECT_PATH } from '../control/names.js';
import { formatStatus, type StatusJson } from './format.js';

const USAGE = `usage: virt-lvmlockctl COMMAND [--json]
commands:
  status [--json]     the lock table: each LV, its mode, domain and phase
  reconcile [--json]  compare running domains with lvmlockd now and fix what can be fixed
  reload              reload the daemon's configuration (like systemctl reload virt-lvmlockd)
  migrate-out DOMAIN  demote DOMAIN's exclusive locks to shared before a migration that no peer
                      daemon will ask for (clusters without peers, or tools that orchestrate)
  settle DOMAIN       take DOMAIN's own lock modes back if it runs here, or release its locks if not
  version             the CLI's version
The daemon is reached on the system bus, or at the address in ${BUS_ADDRESS_ENV}.`;

async function call(member: string, timeoutMs: number, args: string[] = []): Promise<string> {
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

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const [command, ...rest] = argv.filter((a) => a !== '--json');
  const takesDomain = command === 'migrate-out' || command === 'settle';
  if (!command || rest.length !== (takesDomain ? 1 : 0)) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  switch (command) {
    case 'status': {
      const text = await call('Status', 10_000);
      process.stdout.write(json ? `${text}\n` : formatStatus(JSON.parse(text) as StatusJson));
      return 0;
    }
    case 'reconcile': {
      const text = await call('Reconcile', 300_000);
      const r = JSON.parse(text) as { domains: number; took: string[]; released: string[]; problems: string[]; ms: number };
      if (json) {
        process.stdout.write(`${text}\n`);
      } else {
        process.stdout.write(
          `reconciled ${r.domains} running domains in ${r.ms} ms: took ${r.took.join(', ') || 'nothing'}; released ${r.released.join(', ') || 'nothing'}\n`,
        );
        for (const p of r.problems) process.stdout.write(`problem: ${p}\n`);
      }
      // Problems are things the daemon could not fix: scripts must see them.
      return r.problems.length > 0 ? 1 : 0;
    }
    case 'migrate-out':
      process.stdout.write(`${await call('MigrateOut', 120_000, rest)}\n`);
      return 0;
    case 'settle':
      process.stdout.write(`${await call('Settle', 120_000, rest)}\n`);
      return 0;
    case 'reload':
      process.stdout.write(`${await call('Reload', 30_000)}\n`);
      return 0;
    case 'version': {
      const { VERSION } = await import('../daemon.js');
      process.stdout.write(`${VERSION}\n`);
      return 0;
    }
    default:
      process.stderr.write(`virt-lvmlockctl: unknown command ${command}\n${USAGE}\n`);
      return 2;
  }
}

// exitCode, not exit(): exit() would cut a large --json output still buffered for a pipe.
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const message = err instanceof DbusCallError ? err.message : (err as Error).message;
    process.stderr.write(`virt-lvmlockctl: ${message}\n`);
    process.exitCode = 1;
  },
);
