import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig, startSafetyIssues, type Action, type HookOp } from '../../src/config/index.js';

function actions(over: Partial<Record<HookOp, Action>>): Record<HookOp, Action> {
  return { ...defaultConfig().actions, ...over };
}

function refusedOps(over: Partial<Record<HookOp, Action>>): HookOp[] {
  return startSafetyIssues(actions(over)).map((issue) => issue.op);
}

const CHOICES = ['exclusive', 'shared', 'unlock', 'none'] as const;

/**
 * The rule, stated as a walk of the start: the lock held when QEMU is exec'd (after prepare and
 * start) must be ex, the first lock action must be ex (an unlock or shared there is a mistake
 * even if a later op takes ex), and once a lock is taken nothing may weaken it up to started.
 */
function safeByWalk(prepare: Action, start: Action, started: Action): boolean {
  const modes: string[] = [];
  let held = 'none';
  let weakened = false;
  for (const action of [prepare, start, started]) {
    if (action === 'none') {
      modes.push(held);
      continue;
    }
    if (held === 'none' && modes.every((m) => m === 'none') && action !== 'exclusive' && modes.length < 2) weakened = true;
    if (held !== 'none' && action !== 'exclusive') weakened = true;
    if (action === 'exclusive') held = 'ex';
    else if (action === 'shared') held = 'sh';
    else held = 'none';
    modes.push(held);
  }
  return modes[1] === 'ex' && !weakened;
}

describe('startSafetyIssues: never two writers', () => {
  test('the defaults are safe', () => {
    assert.deepEqual(startSafetyIssues(defaultConfig().actions), []);
  });

  test("the seed hook's defaults (prepare shared, started exclusive) are refused at prepare, saying why and what to write", () => {
    const issues = startSafetyIssues(actions({ prepare: 'shared', started: 'exclusive' }));
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.op, 'prepare');
    assert.match(issues[0]!.message, /"shared" takes only a shared lock before QEMU opens the disks/);
    assert.match(issues[0]!.message, /two hosts could then start the same guest and both write its disks/);
    assert.match(issues[0]!.message, /write prepare: exclusive/);
  });

  test('no lock before QEMU opens the disks is refused, even with started exclusive', () => {
    const issues = startSafetyIssues(actions({ prepare: 'none', start: 'none', started: 'exclusive' }));
    assert.deepEqual(issues.map((i) => i.op), ['prepare']);
    assert.match(issues[0]!.message, /neither prepare nor start takes a lock.*write prepare: exclusive/);
  });

  test('ex at start (after the disks are labelled, before QEMU is exec\'d) is enough', () => {
    assert.deepEqual(refusedOps({ prepare: 'none', start: 'exclusive' }), []);
  });

  test('a later shared demotes the ex before or while QEMU runs, and is refused at that op', () => {
    assert.deepEqual(refusedOps({ start: 'shared' }), ['start']);
    const [issue] = startSafetyIssues(actions({ started: 'shared' }));
    assert.equal(issue!.op, 'started');
    assert.match(issue!.message, /while QEMU runs.*write started: none \(or exclusive\)/);
  });

  test('a later unlock is refused too (the schema refuses it as a value as well)', () => {
    assert.deepEqual(refusedOps({ start: 'unlock' }), ['start']);
    assert.deepEqual(refusedOps({ started: 'unlock' }), ['started']);
  });

  test('every combination of prepare, start and started agrees with a walk of the start', () => {
    for (const prepare of CHOICES) {
      for (const start of CHOICES) {
        for (const started of CHOICES) {
          const safe = startSafetyIssues(actions({ prepare, start, started })).length === 0;
          assert.equal(safe, safeByWalk(prepare, start, started), `prepare ${prepare}, start ${start}, started ${started}`);
        }
      }
    }
  });

  test('ops outside the start do not matter', () => {
    assert.deepEqual(refusedOps({ migrate: 'none' }), []);
    assert.deepEqual(refusedOps({ migrate: 'exclusive' }), []);
  });
});
