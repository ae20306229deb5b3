import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerHost } from '../../src/config/types.js';
import { type CoordinatorDeps, makeContext } from '../../src/engine/context.js';
import { Handoff } from '../../src/engine/handoff.js';
import type { Lifecycle } from '../../src/engine/lifecycle.js';
import type { Transitions } from '../../src/engine/transitions.js';
import type { HolderSource } from '../../src/holders/refusal.js';
import { LockTable, type DomainEntry } from '../../src/locks/table.js';
import type { Logger } from '../../src/log/logger.js';
import type { LvFailure } from '../../src/lvm/errors.js';

const UUID = '7e570000-0000-4000-8000-000000000001';
const HOSTS: PeerHost[] = [
  { name: 'hv2', url: 'https://192.0.2.2:1', hostId: 2 },
  { name: 'hv3', url: 'https://192.0.2.3:1', hostId: 3 },
  { name: 'hv4', url: 'https://192.0.2.4:1', hostId: 4 },
];
const quiet: Logger = { error: () => undefined, warning: () => undefined, notice: () => undefined, info: () => undefined, debug: () => undefined, setLevel: () => undefined, close: async () => undefined };

/** The destination's handoff with peers that all refuse, so only the choice of peers is exercised. */
function handoff(holders: HolderSource | undefined): { h: Handoff; asked: string[] } {
  const asked: string[] = [];
  const deps = {
    table: new LockTable(),
    logger: quiet,
    migration: () => ({ demoteTimeoutMs: 1000, promoteGraceMs: 100 }),
    peers: {
      hosts: () => HOSTS,
      send: async (peer: PeerHost) => {
        asked.push(peer.name);
        return { peer: peer.name, ok: false, error: 'refused' };
      },
    },
    holders,
  } as unknown as CoordinatorDeps;
  return { h: new Handoff(makeContext(deps), {} as Transitions, {} as Lifecycle), asked };
}

const ENTRY = { uuid: UUID, name: 'vm1', phase: 'incoming', since: 0, wanted: new Map(), own: new Map(), aliases: new Map() } as DomainEntry;
const MODES = new Map([['vg0/lv1', 'sh' as const]]);

function refused(hostId?: number): LvFailure[] {
  return [{ lv: { vg: 'vg0', lv: 'lv1' }, cls: 'locked-by-other-host', message: 'LV locked by other host: vg0/lv1', hostId }];
}

describe('migration handoff: only the holder is asked to demote', () => {
  test('lvm 2.03.16 gives no host_id; the holder lookup names host_id 3: only hv3 is asked', async () => {
    const source: HolderSource = { describe: async () => [], holdersOf: async () => ({ ids: [], unknown: [], free: [] }), holderIds: async () => ({ ids: [3], unknown: [], free: [] }) };
    const { h, asked } = handoff(source);
    const r = await h.demoteAtPeers(ENTRY, refused(), MODES, Date.now() + 5000);
    assert.deepEqual(asked, ['hv3']);
    assert.match(r.peersSaid, /peers said: hv3: refused/);
  });

  test('a holder with no configured peer: nobody is asked, and the refusal says why', async () => {
    const source: HolderSource = { describe: async () => [], holdersOf: async () => ({ ids: [], unknown: [], free: [] }), holderIds: async () => ({ ids: [7], unknown: [], free: [] }) };
    const { h, asked } = handoff(source);
    const r = await h.demoteAtPeers(ENTRY, refused(), MODES, Date.now() + 5000);
    assert.deepEqual(asked, []);
    assert.equal(r.peersSaid, ' (no peer configured with host_id 7: no peer to ask to demote)');
  });

  test('the holder unknown (sanlock unreadable): every peer is asked, as before', async () => {
    const source: HolderSource = { describe: async () => [], holdersOf: async () => ({ ids: [], unknown: [], free: [] }), holderIds: async () => ({ ids: [], unknown: ['vg0/lv1: sanlock client read failed: read error -2'], free: [] }) };
    const { h, asked } = handoff(source);
    await h.demoteAtPeers(ENTRY, refused(), MODES, Date.now() + 5000);
    assert.deepEqual(asked, ['hv2', 'hv3', 'hv4']);
  });

  test('without a lookup, the host_id lvm >= 2.03.33 printed still picks the peer', async () => {
    const { h, asked } = handoff(undefined);
    await h.demoteAtPeers(ENTRY, refused(4), MODES, Date.now() + 5000);
    assert.deepEqual(asked, ['hv4']);
  });
});

/**
 * The destination's migrate hook with a source that demotes: sanlock takes about 5.5 s to refuse
 * sh against an ex holder, so the holder must be asked before the first lvchange, not after it.
 */
describe('migration handoff: the holder is asked to demote before the first lvchange', () => {
  function destination(holders: HolderSource | undefined, own: 'ex' | 'sh') {
    const events: string[] = [];
    const transitions = {
      apply: async (_entry: DomainEntry, modes: Map<string, string>, cause: string) => {
        events.push(`lvchange ${[...modes].map(([lv, m]) => `${lv} ${m}`).join(',')} (${cause})`);
        return [];
      },
    } as unknown as Transitions;
    const deps = {
      table: new LockTable(),
      logger: quiet,
      migration: () => ({ demoteTimeoutMs: 1000, promoteGraceMs: 100 }),
      peers: {
        hosts: () => HOSTS,
        send: async (peer: PeerHost, kind: string) => {
          events.push(`${kind} -> ${peer.name}`);
          return { peer: peer.name, ok: true, answer: { result: 'demoted', detail: 'demoted' } };
        },
      },
      holders,
    } as unknown as CoordinatorDeps;
    const entry = { ...ENTRY, own: new Map([['vg0/lv1', own]]) } as DomainEntry;
    return { h: new Handoff(makeContext(deps), transitions, {} as Lifecycle), events, entry };
  }
  const holderAt = (id: number): HolderSource => ({ describe: async () => [], holderIds: async () => ({ ids: [id], unknown: [], free: [] }), holdersOf: async () => ({ ids: [id], unknown: [], free: [] }) });

  test('an LV the domain owns ex: the holder (host_id 3) demotes, then one lvchange takes sh', async () => {
    const { h, events, entry } = destination(holderAt(3), 'ex');
    const r = await h.takeShared(entry, MODES, Date.now() + 5000);
    assert.deepEqual(r.failures, []);
    assert.deepEqual(events, ['demote -> hv3', 'lvchange vg0/lv1 sh (hook migrate (after hv3 demoted))']);
    assert.equal(entry.peer, 'hv3');
  });

  test('sanlock finds the lease free: nobody is asked, the lvchange goes at once', async () => {
    const free: HolderSource = { describe: async () => [], holderIds: async () => ({ ids: [], unknown: [], free: [] }), holdersOf: async () => ({ ids: [], unknown: [], free: ['vg0/lv1'] }) };
    const { h, events, entry } = destination(free, 'ex');
    await h.takeShared(entry, MODES, Date.now() + 5000);
    assert.deepEqual(events, ['lvchange vg0/lv1 sh (hook migrate)']);
  });

  test('a shareable LV (owned sh) needs no handoff: nobody is asked', async () => {
    const { h, events, entry } = destination(holderAt(3), 'sh');
    await h.takeShared(entry, MODES, Date.now() + 5000);
    assert.deepEqual(events, ['lvchange vg0/lv1 sh (hook migrate)']);
  });
});
