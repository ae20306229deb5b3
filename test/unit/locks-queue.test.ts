import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedMutex, KeyedQueue } from '../../src/locks/queue.js';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

test('tasks of one key run one after another, in order, even when one fails', async () => {
  const queue = new KeyedQueue();
  const order: string[] = [];
  const a = queue.run('d1', async () => {
    await tick(20);
    order.push('a');
  });
  const b = queue.run('d1', async () => {
    order.push('b');
    throw new Error('b failed');
  });
  const c = queue.run('d1', async () => {
    order.push('c');
  });
  await a;
  await assert.rejects(b, /b failed/);
  await c;
  assert.deepEqual(order, ['a', 'b', 'c']);
  await queue.drain();
  assert.equal(queue.size, 0);
});

test('tasks of different keys run in parallel', async () => {
  const queue = new KeyedQueue();
  const order: string[] = [];
  const slow = queue.run('d1', async () => {
    await tick(30);
    order.push('slow');
  });
  const fast = queue.run('d2', async () => {
    order.push('fast');
  });
  await Promise.all([slow, fast]);
  assert.deepEqual(order, ['fast', 'slow']);
});

test('the LV mutex excludes overlapping key sets and lets disjoint ones through', async () => {
  const mutex = new KeyedMutex();
  const events: string[] = [];
  const first = await mutex.lock(['vg0/b', 'vg0/a']);
  const second = mutex.lock(['vg0/a']).then((release) => {
    events.push('second got a');
    release();
  });
  const third = mutex.lock(['vg0/c']).then((release) => {
    events.push('third got c');
    release();
  });
  await third;
  await tick();
  assert.deepEqual(events, ['third got c']);
  first();
  await second;
  assert.deepEqual(events, ['third got c', 'second got a']);
});
