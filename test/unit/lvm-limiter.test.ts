import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Limiter } from '../../src/lvm/limiter.js';

/** A task that stays running until its release() is called. */
function gate(): { promise: Promise<void>; release: () => void } {
  let release = (): void => {};
  const promise = new Promise<void>((r) => {
    release = r;
  });
  return { promise, release };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('Limiter', () => {
  test('never runs more than the limit; queued tasks start as slots free, in order', async () => {
    const limiter = new Limiter(() => 2);
    const gates = [gate(), gate(), gate(), gate()];
    const started: number[] = [];
    const done = gates.map((g, i) =>
      limiter.run(async () => {
        started.push(i);
        await g.promise;
        return i;
      }),
    );
    await tick();
    assert.deepEqual(started, [0, 1]);
    assert.equal(limiter.active, 2);
    gates[1]!.release();
    await tick();
    assert.deepEqual(started, [0, 1, 2]);
    for (const g of gates) g.release();
    assert.deepEqual(await Promise.all(done), [0, 1, 2, 3]);
    assert.equal(limiter.peak, 2);
    assert.equal(limiter.active, 0);
  });

  test('the limit is read on each acquire, so a reload changes it live', async () => {
    let limit = 1;
    const limiter = new Limiter(() => limit);
    const gates = [gate(), gate(), gate()];
    const started: number[] = [];
    const done = gates.map((g, i) =>
      limiter.run(async () => {
        started.push(i);
        await g.promise;
      }),
    );
    await tick();
    assert.deepEqual(started, [0]);
    limit = 3;
    // The next caller sees the raised limit at once: the queued tasks start, up to the new bound.
    const extra = limiter.run(async () => {
      started.push(3);
    });
    await tick();
    assert.deepEqual(started, [0, 1, 2]);
    gates[0]!.release();
    await tick();
    assert.deepEqual(started, [0, 1, 2, 3]);
    for (const g of gates) g.release();
    await Promise.all([...done, extra]);
    assert.equal(limiter.peak, 3);
  });

  test('a lowered limit holds new tasks back until the running ones drop below it', async () => {
    let limit = 3;
    const limiter = new Limiter(() => limit);
    const first = [gate(), gate(), gate()];
    const running = first.map((g) => limiter.run(() => g.promise));
    await tick();
    assert.equal(limiter.active, 3);
    limit = 1;
    let lateStarted = false;
    const late = limiter.run(async () => {
      lateStarted = true;
    });
    first[0]!.release();
    first[1]!.release();
    await tick();
    assert.equal(lateStarted, false, 'started while 1 task ran and the limit was 1');
    first[2]!.release();
    await Promise.all([...running, late]);
    assert.equal(lateStarted, true);
  });

  test('a failing task frees its slot and passes its error on', async () => {
    const limiter = new Limiter(() => 1);
    await assert.rejects(
      limiter.run(async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(limiter.active, 0);
    assert.equal(await limiter.run(async () => 'next'), 'next');
  });

  test('a broken limit (0, NaN, throwing) still admits one at a time', async () => {
    for (const limit of [() => 0, () => Number.NaN, (): number => { throw new Error('no config'); }]) {
      const limiter = new Limiter(limit);
      const gates = [gate(), gate()];
      const started: number[] = [];
      const done = gates.map((g, i) =>
        limiter.run(async () => {
          started.push(i);
          await g.promise;
        }),
      );
      await tick();
      assert.deepEqual(started, [0]);
      for (const g of gates) g.release();
      await Promise.all(done);
      assert.equal(limiter.peak, 1);
    }
  });
});
