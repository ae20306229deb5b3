/**
 * The engine's side of the metrics: each executor reports through the injected Metrics interface,
 * checked here with a recorder instead of prom-client.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type CoordinatorDeps, makeContext } from '../../src/engine/context.js';
import { Handoff } from '../../src/engine/handoff.js';
import { HookGateway } from '../../src/engine/hook-gateway.js';
import { Transitions } from '../../src/engine/transitions.js';
import type { Clock } from '../../src/engine/clock.js';
import type { TargetMode } from '../../src/locks/lv.js';
import { LockTable } from '../../src/locks/table.js';
import { AuditLog } from '../../src/log/audit.js';
import type { Logger } from '../../src/log/logger.js';
import type { ChangeResult } from '../../src/lvm/lvm.js';
import type { Metrics } from '../../src/metrics/api.js';

const UUID = '6f1a0000-0000-4000-8000-0000000000aa';

const quietLogger: Logger = {
  error: () => undefined,
  warning: () => undefined,
  notice: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  setLevel: () => undefined,
  close: async () => undefined,
};

function recorder(): Metrics & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  return {
    calls,
    transition: (...args) => void calls.push(['transition', ...args]),
    hookAnswered: (...args) => void calls.push(['hookAnswered', ...args]),
    handoffDone: (...args) => void calls.push(['handoffDone', ...args]),
    reconciled: (...args) => void calls.push(['reconciled', ...args]),
    peerReply: (...args) => void calls.push(['peerReply', ...args]),
  };
}

/** A clock that reads the given times in turn, then stays at the last one. */
function scriptedClock(times: number[]): Clock {
  let i = 0;
  return {
    now: () => times[Math.min(i++, times.length - 1)]!,
    after: () => ({ cancel: () => undefined }),
    sleep: async () => undefined,
  };
}

function context(metrics: Metrics, extra: Partial<CoordinatorDeps> = {}) {
  return makeContext({
    table: new LockTable(),
    logger: quietLogger,
    audit: new AuditLog(quietLogger),
    metrics,
    hookTimeoutMs: () => 30_000,
    actions: () => ({ prepare: 'exclusive', start: 'none', started: 'none', stopped: 'unlock', release: 'unlock', migrate: 'shared', restore: 'none', reconnect: 'none', attach: 'none' }),
    ...extra,
  } as unknown as CoordinatorDeps);
}

function domainXml(): string {
  return `<domain type="kvm"><name>vm1</name><uuid>${UUID}</uuid><devices><disk type="block" device="disk"><source dev="/dev/vg0/lv1"/><target dev="vda"/></disk></devices></domain>`;
}

describe('the engine reports to the injected metrics', () => {
  test('every LV of a transition is counted once, with its result, cause and target', async () => {
    const metrics = recorder();
    const change = async (vg: string, lvs: string[]): Promise<ChangeResult> => ({
      ok: false,
      argv: [],
      rc: 5,
      ms: 12,
      stderr: '',
      failures: [{ lv: { vg, lv: lvs[1]! }, cls: 'locked-by-other-host', message: 'LV locked by other host' }],
    });
    const ctx = context(metrics, { lvm: { change, heldLocks: async () => [] } as never });
    const targets = new Map<string, TargetMode>([
      ['vg0/lv1', 'ex'],
      ['vg0/lv2', 'ex'],
    ]);
    await new Transitions(ctx).apply({ uuid: UUID, name: 'vm1' }, targets, 'hook prepare');
    assert.deepEqual(metrics.calls, [
      ['transition', 'ok', 'hook prepare', 'ex'],
      ['transition', 'failed', 'hook prepare', 'ex'],
    ]);
  });

  test('a hook answer is timed with its op and verdict: allowed, refused, or an error inside the daemon', async () => {
    const metrics = recorder();
    const gateway = new HookGateway(context(metrics, { clock: scriptedClock([1000, 1040]) }), ...(Array(5).fill(undefined) as [never, never, never, never, never]));
    assert.match(await gateway.hook({ name: 'vm1', op: 'started', subop: 'begin', extra: '-', xml: domainXml() }), /nothing to do/);
    assert.deepEqual(metrics.calls.at(-1), ['hookAnswered', 'started', 'allowed', 40]);

    await assert.rejects(gateway.hook({ name: 'vm1', op: 'prepare', subop: 'begin', extra: '-', xml: '<domain' }), /cannot read the domain XML/);
    assert.deepEqual(metrics.calls.at(-1)?.slice(0, 3), ['hookAnswered', 'prepare', 'refused']);

    const broken = new HookGateway(
      context(metrics, {
        actions: () => {
          throw new Error('actions unreadable');
        },
      }),
      ...(Array(5).fill(undefined) as [never, never, never, never, never]),
    );
    await assert.rejects(broken.hook({ name: 'vm1', op: 'prepare', subop: 'begin', extra: '-', xml: domainXml() }), /actions unreadable/);
    assert.deepEqual(metrics.calls.at(-1)?.slice(0, 3), ['hookAnswered', 'prepare', 'error']);
    assert.equal(metrics.calls.length, 3);
  });

  test("the destination's handoff is timed, and one that could not ask anybody counts as failed", async () => {
    const metrics = recorder();
    const handoff = new Handoff(context(metrics, { clock: scriptedClock([1000, 1250]) }), undefined as never, undefined as never);
    const entry = { uuid: UUID, name: 'vm1', phase: 'incoming' as const, since: 0, wanted: new Map(), own: new Map(), aliases: new Map() };
    const failures = [{ lv: { vg: 'vg0', lv: 'lv1' }, cls: 'locked-by-other-host' as const, message: 'LV locked by other host' }];
    const outcome = await handoff.demoteAtPeers(entry, failures, new Map([['vg0/lv1', 'sh']]), 60_000);
    assert.equal(outcome.failures.length, 1);
    assert.deepEqual(metrics.calls, [['handoffDone', 'failed', 250]]);
  });
});
