import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerHost } from '../../src/config/types.js';
import { answerHolding } from '../../src/holders/holdings.js';
import { HolderLookup, type HolderLookupDeps } from '../../src/holders/lookup.js';
import { HolderRefusals, peersToAsk } from '../../src/holders/refusal.js';
import { describeRefused } from '../../src/holders/engine.js';
import { LockTable } from '../../src/locks/table.js';
import { classifyFailure, type LvFailure } from '../../src/lvm/errors.js';
import type { RunResult } from '../../src/lvm/run.js';
import type { HoldingReply } from '../../src/peers/client.js';
import type { HoldingRow } from '../../src/peers/messages.js';

const UUID = 'tS1bFh-Qz3x-8kLm-2PqR-aB4c-Xy9Z-0wVuTs';
const DOMAIN = '7e570000-0000-4000-8000-000000000003';
// Local time, so the expected "12:03:11" holds in any time zone.
const SINCE = new Date(2026, 11, 2, 12, 3, 11).getTime();
const NOW = new Date(2026, 11, 2, 12, 10, 0).getTime();
const HOSTS: PeerHost[] = [
  { name: 'hv2', url: 'https://192.0.2.2:16515', hostId: 2 },
  { name: 'hv4', url: 'https://192.0.2.4:16515', hostId: 4 },
];
const LVS_OUT = `  {\n      "report": [\n          {\n              "lv": [\n                  {"vg_name":"vg0", "lv_name":"lv3", "lv_uuid":"${UUID}", "lv_lockargs":"1.0.0:70254592"}\n              ]\n          }\n      ]\n  }\n`;
const READ_EX = `r lvm_vg0:${UUID}:/dev/mapper/vg0-lvmlock:70254592:4\nh 2 gen 3 timestamp 3654034\n`;
const DB_ROW: HoldingRow = { lv: 'vg0/lv3', mode: 'ex', domain: { uuid: DOMAIN, name: 'db', phase: 'running', since: SINCE } };

function ok(stdout: string): RunResult {
  return { rc: 0, signal: null, stdout, stderr: '', ms: 5, timedOut: false };
}
function failed(rc: number | null, stdout: string, stderr = ''): RunResult {
  return { rc, signal: null, stdout, stderr, ms: 5, timedOut: false };
}

interface Fake {
  calls: Array<{ file: string; args: string[]; timeoutMs: number }>;
  asked: Array<{ peer: string; lvs: string[]; timeoutMs: number }>;
  refusals: HolderRefusals;
}

/** A lookup whose commands and peer answers are scripted: lvs answers `lvs`, sanlock answers `sanlock`. */
function fake(opts: {
  lvs?: () => Promise<RunResult>;
  sanlock?: () => Promise<RunResult>;
  holding?: (peer: PeerHost) => Promise<HoldingReply>;
  hosts?: PeerHost[];
  noPeerChannel?: boolean;
}): Fake {
  const calls: Fake['calls'] = [];
  const asked: Fake['asked'] = [];
  const deps: HolderLookupDeps = {
    run: async (file, args, o) => {
      calls.push({ file, args, timeoutMs: o.timeoutMs });
      if (file === '/sbin/lvm') return (opts.lvs ?? (async () => ok(LVS_OUT)))();
      if (file === 'sanlock') return (opts.sanlock ?? (async () => ok(READ_EX)))();
      throw new Error(`unexpected command ${file}`);
    },
    lvm: () => '/sbin/lvm',
    sanlock: 'sanlock',
    hosts: () => opts.hosts ?? HOSTS,
    holding: opts.noPeerChannel
      ? undefined
      : async (peer, lvs, timeoutMs) => {
          asked.push({ peer: peer.name, lvs, timeoutMs });
          return (opts.holding ?? (async (p) => ({ peer: p.name, ok: true, rows: [DB_ROW] })))(peer);
        },
  };
  return { calls, asked, refusals: new HolderRefusals(new HolderLookup(deps), () => NOW) };
}

/** The failure lvm 2.03.16 gives (no host_id), or 2.03.33 (with it), parsed by the daemon's own classifier. */
function refusal(hostId?: number): LvFailure[] {
  const suffix = hostId === undefined ? '' : ` (host_id ${hostId})`;
  return classifyFailure(failed(5, '', `  LV locked by other host: vg0/lv3${suffix}\n  Failed to lock logical volume vg0/lv3.\n`), [{ vg: 'vg0', lv: 'lv3' }]);
}

function never(): Promise<never> {
  return new Promise(() => undefined);
}

describe('holder lookup: every source answers', () => {
  test('lvm 2.03.16 (no host_id): lvs, then sanlock, then the peer; the refusal names host, mode, domain and since', async () => {
    const f = fake({});
    const [line] = await f.refusals.describe(refusal(), 1000);
    assert.equal(line, 'vg0/lv3: locked ex by hv2 (host_id 2), domain db running there since 12:03:11');
    assert.deepEqual(f.calls.map((c) => [c.file, ...c.args]), [
      ['/sbin/lvm', 'lvs', '--nolocking', '--reportformat', 'json', '-o', 'vg_name,lv_name,lv_uuid,lv_lockargs', 'vg0/lv3'],
      ['sanlock', 'client', 'read', '-r', `lvm_vg0:${UUID}:/dev/mapper/vg0-lvmlock:70254592`, '-h', '1'],
    ]);
    assert.ok(f.calls.every((c) => c.timeoutMs > 0 && c.timeoutMs <= 1000), 'every command is bounded by what is left of 1 s');
    assert.deepEqual(f.asked.map((a) => [a.peer, a.lvs]), [['hv2', ['vg0/lv3']]], 'only the holder is asked');
  });

  test('lvm >= 2.03.33: the host_id of the refusal is used, no command runs, the mode comes from the peer', async () => {
    const f = fake({});
    const [line] = await f.refusals.describe(refusal(2), 1000);
    assert.equal(line, 'vg0/lv3: locked ex by hv2 (host_id 2), domain db running there since 12:03:11');
    assert.deepEqual(f.calls, []);
  });

  test('shared owners are each named with what runs there', async () => {
    const read = `r lvm_vg0:${UUID}:/dev/mapper/vg0-lvmlock:70254592:SH\nh 2 gen 3\nh 4 gen 1\n`;
    const f = fake({
      sanlock: async () => ok(read),
      holding: async (p) => ({ peer: p.name, ok: true, rows: [{ lv: 'vg0/lv3', mode: 'sh', domain: { uuid: DOMAIN, name: 'db', phase: p.name === 'hv2' ? 'migrating-out' : 'incoming', since: SINCE } }] }),
    });
    const [line] = await f.refusals.describe(refusal(), 1000);
    assert.equal(line, 'vg0/lv3: locked sh by hv2 (host_id 2), domain db migrating away there since 12:03:11, and sh by hv4 (host_id 4), domain db arriving by migration there since 12:03:11');
  });

  test('a refusal of another kind is passed through as before', async () => {
    const f = fake({});
    const inUse = classifyFailure(failed(5, '', '  Logical volume vg0/lv1 in use.\n'), [{ vg: 'vg0', lv: 'lv1' }]);
    assert.deepEqual(await f.refusals.describe(inUse, 1000), ['vg0/lv1: in use (still open on this host), not deactivated; its lock stays held']);
    assert.deepEqual(f.calls, []);
  });
});

describe('holder lookup: each missing source says what is unknown', () => {
  test('lvs fails', async () => {
    const f = fake({ lvs: async () => failed(5, '', '  Volume group "vg0" not found\n') });
    const [line] = await f.refusals.describe(refusal(), 1000);
    assert.equal(line, 'vg0/lv3: locked by another host (holder unknown: lvs failed: exit code 5: Volume group "vg0" not found)');
    assert.equal(f.calls.length, 1, 'sanlock is not asked without the lease location');
  });

  test('a thin LV has no lease of its own', async () => {
    const f = fake({ lvs: async () => ok(LVS_OUT.replace('1.0.0:70254592', '')) });
    const [line] = await f.refusals.describe(refusal(), 1000);
    assert.match(line!, /^vg0\/lv3: locked by another host \(holder unknown: no lease location: vg0\/lv3: it has no lock args of its own/);
  });

  test('sanlock client read fails (no daemon: read error -2)', async () => {
    const f = fake({ sanlock: async () => failed(1, 'read error -2\n') });
    const [line] = await f.refusals.describe(refusal(), 1000);
    assert.equal(line, 'vg0/lv3: locked by another host (holder unknown: sanlock client read failed: read error -2 ENOENT (is the sanlock daemon running?))');
  });

  test('sanlock is not installed', async () => {
    const f = fake({ sanlock: async () => failed(null, '', 'cannot run sanlock: spawn sanlock ENOENT') });
    const [line] = await f.refusals.describe(refusal(), 1000);
    assert.equal(line, 'vg0/lv3: locked by another host (holder unknown: sanlock client read failed: cannot run sanlock: spawn sanlock ENOENT)');
  });

  test('sanlock shows no owner any more', async () => {
    const f = fake({ sanlock: async () => ok(`r lvm_vg0:${UUID}:/dev/mapper/vg0-lvmlock:70254592:5\n`) });
    const [line] = await f.refusals.describe(refusal(), 1000);
    assert.equal(line, 'vg0/lv3: locked by another host (holder unknown: sanlock reports no owner of its lease now (the lock may have been released since))');
  });

  test('no peer has the host_id', async () => {
    const f = fake({ sanlock: async () => ok(READ_EX.replace('h 2 ', 'h 3 ')) });
    const [line] = await f.refusals.describe(refusal(), 1000);
    assert.equal(line, 'vg0/lv3: locked ex by host_id 3 (no peer configured with host_id 3)');
    assert.deepEqual(f.asked, []);
  });

  test('the peer does not answer within the budget', async () => {
    const f = fake({ holding: never });
    const started = performance.now();
    const [line] = await f.refusals.describe(refusal(), 1000);
    const took = performance.now() - started;
    assert.equal(line, 'vg0/lv3: locked ex by hv2 (host_id 2), domain unknown: hv2 did not answer within 1 s');
    assert.ok(took < 1300, `the refusal waited ${took} ms`);
    assert.ok(f.asked[0]!.timeoutMs <= 1000);
  });

  test('the peer refuses the query or cannot be reached', async () => {
    const f = fake({ holding: async (p) => ({ peer: p.name, ok: false, error: 'connect ECONNREFUSED 192.0.2.2:16515' }) });
    const [line] = await f.refusals.describe(refusal(2), 1000);
    assert.equal(line, 'vg0/lv3: locked by hv2 (host_id 2), domain unknown: hv2 could not be asked: connect ECONNREFUSED 192.0.2.2:16515');
  });

  test('the peer answers that no domain uses it and its daemon does not hold it', async () => {
    const f = fake({ holding: async (p) => ({ peer: p.name, ok: true, rows: [{ lv: 'vg0/lv3', mode: 'none' }] }) });
    const [line] = await f.refusals.describe(refusal(), 1000);
    assert.equal(line, "vg0/lv3: locked ex by hv2 (host_id 2), domain unknown: hv2's daemon does not hold it");
  });

  test("the peer holds it for no domain: an admin's activation", async () => {
    const f = fake({ holding: async (p) => ({ peer: p.name, ok: true, rows: [{ lv: 'vg0/lv3', mode: 'ex', unused: 'held, not ours' }] }) });
    const [line] = await f.refusals.describe(refusal(2), 1000);
    assert.equal(line, "vg0/lv3: locked ex by hv2 (host_id 2), held there outside virt-lvmlockd (no domain of hv2's daemon uses it)");
  });

  test('without a peer channel the domain is unknown', async () => {
    const f = fake({ noPeerChannel: true });
    const [line] = await f.refusals.describe(refusal(), 1000);
    assert.equal(line, 'vg0/lv3: locked ex by hv2 (host_id 2), domain unknown: no peer channel to ask hv2');
  });

  test('a sanlock read slower than the 1 s budget: "holder unknown: timed out", and the refusal is not held longer', async () => {
    const f = fake({ sanlock: never });
    const started = performance.now();
    const [line] = await f.refusals.describe(refusal(), 1000);
    const took = performance.now() - started;
    assert.equal(line, 'vg0/lv3: locked by another host (holder unknown: timed out: sanlock client read gave no answer within 1 s)');
    assert.ok(took >= 950 && took < 1300, `the lookup took ${took} ms`);
    assert.ok(f.calls[1]!.timeoutMs <= 1000, 'the runner was told to kill sanlock when the budget ends');
  });

  test('a budget larger than 1 s is cut to 1 s; no time left means no lookup at all', async () => {
    const slow = fake({ lvs: never });
    const started = performance.now();
    const [line] = await slow.refusals.describe(refusal(), 30_000);
    assert.ok(performance.now() - started < 1300);
    assert.equal(line, 'vg0/lv3: locked by another host (holder unknown: timed out: lvs gave no answer within 1 s)');
    const none = fake({});
    assert.deepEqual(await none.refusals.describe(refusal(), 0), ["vg0/lv3: locked by another host (holder unknown: no time left before the hook's deadline)"]);
    assert.deepEqual(none.calls, []);
  });

  test('without a holder source the refusal reads as before', async () => {
    assert.deepEqual(await describeRefused(undefined, refusal(2), 1000), ['vg0/lv3: locked by another host (host_id 2)']);
  });
});

describe('migration handoff: whom to ask to demote', () => {
  const hosts: PeerHost[] = [{ name: 'hv2', url: 'https://192.0.2.2:1', hostId: 2 }, { name: 'hv3', url: 'https://192.0.2.3:1', hostId: 3 }, { name: 'hv9', url: 'https://192.0.2.9:1' }];
  test('a known holder with a peer: that peer alone', () => {
    assert.deepEqual(peersToAsk(hosts, [3]).asked.map((h) => h.name), ['hv3']);
  });
  test('a known holder without a peer: only the peers that have no host_id', () => {
    const r = peersToAsk(hosts, [7]);
    assert.deepEqual(r.asked.map((h) => h.name), ['hv9']);
    assert.match(r.why, /no peer configured with host_id 7/);
    assert.deepEqual(peersToAsk(hosts.slice(0, 2), [7]).asked, []);
  });
  test('an unknown holder: every peer, as before', () => {
    assert.deepEqual(peersToAsk(hosts, []).asked.map((h) => h.name), ['hv2', 'hv3', 'hv9']);
  });
  test('holderIds reads the host_ids from sanlock without asking any peer', async () => {
    const f = fake({});
    assert.deepEqual(await f.refusals.holderIds(refusal(), 1000), { ids: [2], unknown: [], free: [] });
    assert.deepEqual(f.asked, []);
    const broken = fake({ sanlock: async () => failed(1, 'read error -2\n') });
    const r = await broken.refusals.holderIds(refusal(), 1000);
    assert.deepEqual(r.ids, []);
    assert.match(r.unknown[0]!, /^vg0\/lv3: sanlock client read failed: read error -2/);
  });
});

describe('the holding answer, from the lock table only', () => {
  test('a domain using the LV, a held LV no domain uses, and one not held', () => {
    const table = new LockTable();
    table.setHeld('vg0/lv3', 'ex', SINCE - 5000);
    table.domains.set(DOMAIN, { uuid: DOMAIN, name: 'db', phase: 'running', since: SINCE, wanted: new Map([['vg0/lv3', 'ex']]), own: new Map([['vg0/lv3', 'ex']]), aliases: new Map() });
    table.setHeld('vg0/lv5', 'sh', SINCE);
    const answer = answerHolding(table, { lvs: ['vg0/lv3', 'vg0/lv5', 'vg0/lv6'] });
    assert.deepEqual(answer.rows, [
      { lv: 'vg0/lv3', mode: 'ex', domain: { uuid: DOMAIN, name: 'db', phase: 'running', since: SINCE } },
      { lv: 'vg0/lv5', mode: 'sh', unused: 'held, not ours' },
      { lv: 'vg0/lv6', mode: 'none' },
    ]);
  });
});
