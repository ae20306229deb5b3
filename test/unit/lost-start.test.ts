/**
 * A start whose Started event was lost stays 'starting' in the table (seen on real libvirt 9.0
 * after a libvirtd restart: libvirt-dbus renews its event subscriptions only at its next call).
 * A peer's demote request for it would then be refused as "not running", failing a live
 * migration; libvirt's state settles it first.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type CoordinatorDeps, makeContext } from '../../src/engine/context.js';
import { Lifecycle } from '../../src/engine/lifecycle.js';
import { settleLostStart } from '../../src/engine/lost-start.js';
import type { PeerNotices } from '../../src/engine/notices.js';
import type { Transitions } from '../../src/engine/transitions.js';
import { LockTable, type DomainEntry } from '../../src/locks/table.js';
import type { Logger } from '../../src/log/logger.js';

const UUID = '7e570000-0000-4000-8000-0000000000a1';

function setup(state: number | Error) {
  const warnings: string[] = [];
  const logger: Logger = { error: () => undefined, warning: (m) => void warnings.push(String(m)), notice: () => undefined, info: () => undefined, debug: () => undefined, setLevel: () => undefined, close: async () => undefined };
  const table = new LockTable();
  const entry = { uuid: UUID, name: 'vm1', phase: 'starting', since: 0, wanted: new Map([['vg0/lv1', 'ex']]), own: new Map([['vg0/lv1', 'ex']]), aliases: new Map() } as DomainEntry;
  table.domains.set(UUID, entry);
  const deps = {
    table,
    logger,
    libvirt: {
      domainState: async () => {
        if (state instanceof Error) throw state;
        return { state, reason: 1 };
      },
    },
  } as unknown as CoordinatorDeps;
  const ctx = makeContext(deps);
  return { ctx, entry, warnings, lifecycle: new Lifecycle(ctx, {} as Transitions, {} as PeerNotices) };
}

describe('a start whose Started event was lost', () => {
  test('libvirt says it runs: the entry becomes running, with a warning naming the lost event', async () => {
    const { ctx, entry, warnings, lifecycle } = setup(1);
    await settleLostStart(ctx, lifecycle, UUID);
    assert.equal(entry.phase, 'running');
    assert.match(warnings.join('\n'), /vm1: its Started event was lost; libvirt says it runs/);
  });

  test('libvirt says it is shut off: the entry stays starting', async () => {
    const { ctx, entry, lifecycle } = setup(5);
    await settleLostStart(ctx, lifecycle, UUID);
    assert.equal(entry.phase, 'starting');
  });

  test('libvirt cannot be asked: nothing changes', async () => {
    const { ctx, entry, lifecycle } = setup(new Error('no reply'));
    await settleLostStart(ctx, lifecycle, UUID);
    assert.equal(entry.phase, 'starting');
  });
});
