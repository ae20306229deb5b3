import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig } from '../../src/config/index.js';
import { decideHook, groupTransitions, localConflicts, planReconcile, releaseTargets, takeTargets } from '../../src/engine/policy.js';
import type { LockMode } from '../../src/locks/lv.js';
import { type DomainEntry, LockTable, type Phase } from '../../src/locks/table.js';

const actions = defaultConfig().actions;

function entry(uuid: string, wanted: Record<string, LockMode>, phase: Phase = 'running', since = 0): DomainEntry {
  return { uuid, name: `vm-${uuid}`, phase, since, wanted: new Map(Object.entries(wanted)), own: new Map(Object.entries(wanted)), aliases: new Map() };
}

function tableWith(...entries: DomainEntry[]): LockTable {
  const table = new LockTable();
  for (const e of entries) table.domains.set(e.uuid, e);
  return table;
}

describe('hook decisions', () => {
  test('prepare begin of a fresh start takes the own modes, phase starting', () => {
    assert.deepEqual(decideHook('prepare', 'begin', undefined, actions), { kind: 'lock', modes: 'own', phase: 'starting' });
  });
  test('migrate begin takes everything shared, phase incoming', () => {
    assert.deepEqual(decideHook('migrate', 'begin', undefined, actions), { kind: 'lock', modes: 'shared', phase: 'incoming' });
  });
  test('prepare right after migrate confirms the incoming migration; start and started then change nothing', () => {
    const incoming = { ...entry('a', { 'vg0/lv1': 'ex' }, 'incoming'), incoming: 'announced' as const };
    assert.equal(decideHook('prepare', 'begin', incoming, actions).kind, 'confirm-incoming');
    const prepared = { ...incoming, incoming: 'prepared' as const };
    for (const op of ['start', 'started'] as const) assert.equal(decideHook(op, 'begin', prepared, actions).kind, 'allow', op);
  });
  test('a second prepare of a prepared incoming is a new start and takes ex like any start', () => {
    const prepared = { ...entry('a', { 'vg0/lv1': 'sh' }, 'incoming'), incoming: 'prepared' as const };
    assert.deepEqual(decideHook('prepare', 'begin', prepared, actions), { kind: 'lock', modes: 'own', phase: 'starting' });
  });
  test('migrate begin for a domain that runs here is refused', () => {
    for (const phase of ['running', 'starting', 'migrating-out'] as const) {
      const decision = decideHook('migrate', 'begin', entry('a', { 'vg0/lv1': 'ex' }, phase), actions);
      assert.equal(decision.kind, 'refuse', phase);
      assert.match(decision.kind === 'refuse' ? decision.reason : '', /already runs on this host/);
    }
  });
  test('end ops and ops with action none need no lock change', () => {
    assert.equal(decideHook('release', 'end', undefined, actions).kind, 'allow');
    assert.equal(decideHook('started', 'begin', undefined, actions).kind, 'allow');
    assert.equal(decideHook('prepare', 'end', undefined, actions).kind, 'allow');
  });
  test("the old hook's actions carry over: prepare shared, started exclusive", () => {
    const seed = { ...actions, prepare: 'shared' as const, started: 'exclusive' as const };
    assert.deepEqual(decideHook('prepare', 'begin', undefined, seed), { kind: 'lock', modes: 'shared', phase: 'starting' });
    assert.deepEqual(decideHook('started', 'begin', entry('a', {}, 'starting'), seed), { kind: 'lock', modes: 'own', phase: 'starting' });
  });
});

describe('local conflicts', () => {
  test('a second local domain cannot take an LV another one holds ex', () => {
    const table = tableWith(entry('a', { 'vg0/lv1': 'ex' }));
    const conflicts = localConflicts(table, 'b', new Map([['vg0/lv1', 'ex']]));
    assert.equal(conflicts.length, 1);
    assert.match(conflicts[0].reason, /already used by domain vm-a/);
  });
  test('two local domains may share an LV both want sh', () => {
    const table = tableWith(entry('a', { 'vg0/shared': 'sh' }));
    assert.deepEqual(localConflicts(table, 'b', new Map([['vg0/shared', 'sh']])), []);
  });
  test('a domain never conflicts with itself', () => {
    const table = tableWith(entry('a', { 'vg0/lv1': 'ex' }));
    assert.deepEqual(localConflicts(table, 'a', new Map([['vg0/lv1', 'ex']])), []);
  });
});

describe('transitions', () => {
  test('one transition per VG and mode, releases first', () => {
    const t = groupTransitions(
      new Map([
        ['vg1/b', 'ex'],
        ['vg0/x', 'sh'],
        ['vg1/a', 'ex'],
        ['vg0/y', 'off'],
        ['vg0/z', 'ex'],
      ]),
    );
    assert.deepEqual(t, [
      { vg: 'vg0', lvs: ['y'], to: 'off' },
      { vg: 'vg0', lvs: ['x'], to: 'sh' },
      { vg: 'vg0', lvs: ['z'], to: 'ex' },
      { vg: 'vg1', lvs: ['a', 'b'], to: 'ex' },
    ]);
  });
  test('a stopping domain releases only what no other local domain uses', () => {
    const table = tableWith(entry('a', { 'vg0/lv1': 'ex', 'vg0/shared': 'sh' }), entry('b', { 'vg0/shared': 'sh' }));
    table.setHeld('vg0/lv1', 'ex', 0);
    table.setHeld('vg0/shared', 'sh', 0);
    assert.deepEqual([...releaseTargets(table, 'a')], [['vg0/lv1', 'off']]);
  });
});

/** The daemon took every LV these tests hold, unless a test says otherwise. */
const ALL_OURS = new Map(['vg0/lv1', 'vg0/lv2', 'vg0/lv5', 'vg0/lv7', 'vg0/lv9'].map((lv) => [lv, {}]));

describe('reconcile plan', () => {
  test('takes what a running domain misses and releases what nobody uses', () => {
    const table = new LockTable();
    const plan = planReconcile({
      running: [{ uuid: 'a', name: 'vm-a', own: new Map([['vg0/lv1', 'ex'], ['vg0/lv2', 'ex']]), aliases: new Map(), complete: true }],
      held: new Map([
        ['vg0/lv1', 'ex'],
        ['vg0/lv9', 'ex'],
      ]),
      table,
      now: 1000,
      startGraceMs: 100,
      owned: ALL_OURS,
      releaseForeign: false,
    });
    assert.deepEqual([...(plan.wanted.get('a') ?? [])], [['vg0/lv1', 'ex'], ['vg0/lv2', 'ex']]);
    assert.deepEqual(plan.release, ['vg0/lv9']);
    assert.deepEqual(plan.forget, []);
  });
  test('a domain in its start grace keeps its locks although libvirt does not list it yet', () => {
    const table = tableWith(entry('s', { 'vg0/lv5': 'ex' }, 'starting', 950));
    const plan = planReconcile({ running: [], held: new Map([['vg0/lv5', 'ex']]), table, now: 1000, startGraceMs: 100, owned: ALL_OURS, releaseForeign: false });
    assert.deepEqual(plan.release, []);
    assert.deepEqual(plan.forget, []);
  });
  test('after the grace a domain that never appeared is forgotten and its LVs released', () => {
    const table = tableWith(entry('s', { 'vg0/lv5': 'ex' }, 'starting', 0));
    const plan = planReconcile({ running: [], held: new Map([['vg0/lv5', 'ex']]), table, now: 1000, startGraceMs: 100, owned: ALL_OURS, releaseForeign: false });
    assert.deepEqual(plan.forget, ['s']);
    assert.deepEqual(plan.release, ['vg0/lv5']);
  });
  test('a migrating domain is wanted sh, not promoted by reconcile', () => {
    const table = tableWith(entry('m', { 'vg0/lv1': 'sh' }, 'incoming', 990));
    const plan = planReconcile({
      running: [{ uuid: 'm', name: 'vm-m', own: new Map([['vg0/lv1', 'ex']]), aliases: new Map(), complete: true }],
      held: new Map([['vg0/lv1', 'sh']]),
      table,
      now: 1000,
      startGraceMs: 100,
      owned: ALL_OURS,
      releaseForeign: false,
    });
    assert.deepEqual([...(plan.wanted.get('m') ?? [])], [['vg0/lv1', 'sh']]);
  });
  test('after a restart, a domain libvirt shows paused for an incoming migration is wanted sh', () => {
    const plan = planReconcile({
      running: [{ uuid: 'n', name: 'vm-n', own: new Map([['vg0/lv1', 'ex']]), aliases: new Map(), complete: true, migration: 'incoming' }],
      held: new Map([['vg0/lv1', 'sh']]),
      table: new LockTable(),
      now: 0,
      startGraceMs: 100,
      owned: ALL_OURS,
      releaseForeign: false,
    });
    assert.deepEqual([...(plan.wanted.get('n') ?? [])], [['vg0/lv1', 'sh']]);
    assert.deepEqual(plan.release, []);
  });
  test('a listed domain whose XML could not be read keeps its locks', () => {
    const table = tableWith(entry('x', { 'vg0/lv7': 'ex' }, 'running', 0));
    const plan = planReconcile({
      running: [{ uuid: 'x', name: 'vm-x', own: new Map(), aliases: new Map(), complete: false }],
      held: new Map([['vg0/lv7', 'ex']]),
      table,
      now: 1_000_000,
      startGraceMs: 100,
      owned: ALL_OURS,
      releaseForeign: false,
    });
    assert.deepEqual(plan.release, []);
    assert.deepEqual(plan.forget, []);
  });
  test('the reconcile task takes only what differs from what is held, and reports mixed modes', () => {
    const table = tableWith(entry('a', { 'vg0/lv1': 'ex', 'vg0/lv2': 'ex' }), entry('b', { 'vg0/lv1': 'sh' }));
    table.setHeld('vg0/lv1', 'ex', 0);
    assert.deepEqual([...takeTargets(table, 'a').take], [['vg0/lv2', 'ex']]);
    const b = takeTargets(table, 'b');
    assert.equal(b.take.size, 0);
    assert.match(b.problems.join(), /vg0\/lv1: domain vm-b needs it shared/);
  });
  test('a sh user and an ex user of one LV is reported, not fixed by demoting', () => {
    const plan = planReconcile({
      running: [
        { uuid: 'a', name: 'vm-a', own: new Map([['vg0/lv1', 'ex']]), aliases: new Map(), complete: true },
        { uuid: 'b', name: 'vm-b', own: new Map([['vg0/lv1', 'sh']]), aliases: new Map(), complete: true },
      ],
      held: new Map([['vg0/lv1', 'ex']]),
      table: new LockTable(),
      now: 0,
      startGraceMs: 100,
      owned: ALL_OURS,
      releaseForeign: false,
    });
    assert.match(plan.problems.join(), /vg0\/lv1: domain vm-b needs it shared/);
    assert.deepEqual(plan.release, []);
  });
  test('a held LV the daemon did not take is reported as not ours and left alone, unless release_foreign', () => {
    const input = { running: [], held: new Map([['vg0/admin', 'ex' as const], ['vg0/lv9', 'ex' as const]]), table: new LockTable(), now: 0, startGraceMs: 100, owned: new Map([['vg0/lv9', {}]]) };
    const plan = planReconcile({ ...input, releaseForeign: false });
    assert.deepEqual(plan.release, ['vg0/lv9']);
    assert.deepEqual(plan.notOurs, ['vg0/admin']);
    const forced = planReconcile({ ...input, releaseForeign: true });
    assert.deepEqual(forced.release, ['vg0/admin', 'vg0/lv9']);
    assert.deepEqual(forced.foreignReleased, ['vg0/admin']);
  });
  test('a running domain whose disks resolved only in part keeps every held LV: nothing is released', () => {
    const plan = planReconcile({
      running: [{ uuid: 'p', name: 'vm-p', own: new Map([['vg0/lv1', 'ex']]), aliases: new Map(), complete: false }],
      held: new Map([['vg0/lv1', 'ex'], ['vg0/lv2', 'ex']]),
      table: new LockTable(),
      now: 0,
      startGraceMs: 100,
      owned: ALL_OURS,
      releaseForeign: false,
    });
    assert.deepEqual(plan.release, []);
    assert.match(plan.problems.join(), /not releasing vg0\/lv2: running domain vm-p could not be read completely/);
  });
  test('with a domain read only in part, an LV recorded as taken for a domain no longer running is still released', () => {
    const plan = planReconcile({
      running: [{ uuid: 'p', name: 'vm-p', own: new Map([['vg0/lv1', 'ex']]), aliases: new Map(), complete: false }],
      held: new Map([['vg0/lv1', 'ex'], ['vg0/lv2', 'sh'], ['vg0/lv3', 'ex']]),
      table: new LockTable(),
      now: 0,
      startGraceMs: 100,
      owned: new Map([['vg0/lv1', { domain: 'p' }], ['vg0/lv2', { domain: 'gone' }], ['vg0/lv3', { domain: 'p' }]]),
      releaseForeign: false,
    });
    assert.deepEqual(plan.release, ['vg0/lv2']);
    assert.match(plan.problems.join(), /not releasing vg0\/lv3: running domain vm-p/);
  });
});
