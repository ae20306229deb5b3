import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Clock } from '../../src/engine/clock.js';
import { type CoordinatorDeps, makeContext } from '../../src/engine/context.js';
import { DEAD_RETRY_MS, DEAD_WAIT_MARGIN_MS, type DeadWaitDeps, waitForDeadHolders } from '../../src/engine/dead-holder.js';
import { HookGateway } from '../../src/engine/hook-gateway.js';
import { Lifecycle } from '../../src/engine/lifecycle.js';
import { Reconciler } from '../../src/engine/reconcile.js';
import { Transitions } from '../../src/engine/transitions.js';
import type { DeadVerdict, HolderSource } from '../../src/holders/refusal.js';
import { LockTable } from '../../src/locks/table.js';
import { AuditLog } from '../../src/log/audit.js';
import type { Logger } from '../../src/log/logger.js';
import type { LvFailure } from '../../src/lvm/errors.js';
import type { ChangeResult } from '../../src/lvm/lvm.js';

// Local time, so "12:05:40" holds in any time zone.
const WALL = new Date(2026, 11, 2, 12, 5, 33).getTime();
const REFUSED: LvFailure[] = [{ lv: { vg: 'vg0', lv: 'lv1' }, cls: 'locked-by-other-host', message: 'LV locked by other host: vg0/lv1' }];
const SAID = 'vg0/lv1: hvA (host_id 1) has not renewed its lease for 133 s';

/** A clock whose sleeps pass at once, moving its time on; it records them. */
function fakeClock(): Clock & { sleeps: number[]; t: number } {
  const c = {
    t: 0,
    sleeps: [] as number[],
    now: () => c.t,
    after: () => ({ cancel: () => undefined }),
    sleep: async (ms: number) => {
      c.sleeps.push(ms);
      c.t += ms;
    },
  };
  return c;
}

function logger(): Logger & { notices: string[] } {
  const notices: string[] = [];
  return { notices, error: () => undefined, warning: () => undefined, notice: (m) => void notices.push(m), info: () => undefined, debug: () => undefined, setLevel: () => undefined, close: async () => undefined };
}

/**
 * Holders as sanlock would judge them: hvA stopped renewing and its lease frees at `freeAtMs` on
 * the fake clock (sanlock counts whole seconds), unless `verdict` says otherwise at that time.
 */
function holders(clock: Clock, freeAtMs: number, verdict?: (now: number) => DeadVerdict | undefined): HolderSource & { asked: number } {
  const source = {
    asked: 0,
    describe: async () => [],
    holderIds: async () => ({ ids: [1], unknown: [], free: [] }),
    holdersOf: async () => ({ ids: [1], unknown: [], free: [] }),
    deadHolders: async (): Promise<DeadVerdict> => {
      source.asked++;
      return verdict?.(clock.now()) ?? { dead: true, freeInS: Math.ceil((freeAtMs - clock.now()) / 1000), said: SAID };
    },
  };
  return source;
}

/** The real lvchange as sanlock answers it: refused until `grantAtMs`, then granted. */
function lvchange(clock: Clock, grantAtMs: number): (() => Promise<LvFailure[]>) & { tries: number[] } {
  const tries: number[] = [];
  const retry = async (): Promise<LvFailure[]> => {
    tries.push(clock.now());
    return clock.now() >= grantAtMs ? [] : REFUSED;
  };
  return Object.assign(retry, { tries });
}

function deps(clock: Clock, log: Logger, source: HolderSource, extra: Partial<DeadWaitDeps> = {}): DeadWaitDeps {
  return { clock, logger: log, holders: source, enabled: true, hookTimeoutMs: 120_000, wallNow: () => WALL, ...extra };
}

describe('hook.wait_for_dead_holder: waiting for a holder that stopped renewing', () => {
  test('waits until the expiry plus the margin, retries the lvchange once, and gets the lock', async () => {
    const clock = fakeClock();
    const log = logger();
    const retry = lvchange(clock, 7000);
    const out = await waitForDeadHolders(deps(clock, log, holders(clock, 7000)), 'prepare of domain db', REFUSED, 108_000, retry);
    assert.deepEqual(out, { failures: [], note: '' });
    assert.deepEqual(clock.sleeps, [7000 + DEAD_WAIT_MARGIN_MS]);
    assert.deepEqual(retry.tries, [9000]);
    assert.deepEqual(log.notices, [
      `prepare of domain db: refused only by holders that stopped renewing (${SAID}); waiting 9 s for their leases to expire (hook.wait_for_dead_holder)`,
      "prepare of domain db: got the locks after waiting 9 s for the holders' leases to expire",
    ]);
  });

  test('when sanlock grants later than the expiry, the lvchange is tried again every 2 s', async () => {
    const clock = fakeClock();
    const retry = lvchange(clock, 12_500);
    const out = await waitForDeadHolders(deps(clock, logger(), holders(clock, 7000)), 'prepare of domain db', REFUSED, 108_000, retry);
    assert.deepEqual(out.failures, []);
    assert.deepEqual(retry.tries, [9000, 9000 + DEAD_RETRY_MS, 9000 + 2 * DEAD_RETRY_MS]);
  });

  test('a live holder: no wait and no retry, the refusal goes out as it was', async () => {
    const clock = fakeClock();
    const retry = lvchange(clock, 0);
    const source = holders(clock, 0, () => ({ dead: false, why: 'vg0/lv1: hvA is alive (renewed 3 s ago)' }));
    const out = await waitForDeadHolders(deps(clock, logger(), source), 'prepare of domain db', REFUSED, 108_000, retry);
    assert.deepEqual(out, { failures: REFUSED, note: '' });
    assert.deepEqual(clock.sleeps, []);
    assert.deepEqual(retry.tries, []);
  });

  test('an expiry after the hook deadline: refused at once, saying when the locks free and that hook.timeout is too short', async () => {
    const clock = fakeClock();
    const retry = lvchange(clock, 0);
    const out = await waitForDeadHolders(deps(clock, logger(), holders(clock, 133_000)), 'prepare of domain db', REFUSED, 108_000, retry);
    assert.deepEqual(out.failures, REFUSED);
    assert.equal(
      out.note,
      ` (not waiting for the holders: ${SAID}; their locks free at about 12:07:46 (in 133 s), after this hook's deadline: hook.timeout (2m) is too short for the wait)`,
    );
    assert.deepEqual(clock.sleeps, []);
    assert.deepEqual(retry.tries, []);
  });

  test('hook.wait_for_dead_holder false: sanlock is not even asked, nothing waits', async () => {
    const clock = fakeClock();
    const retry = lvchange(clock, 0);
    const source = holders(clock, 7000);
    const out = await waitForDeadHolders(deps(clock, logger(), source, { enabled: false }), 'prepare of domain db', REFUSED, 108_000, retry);
    assert.deepEqual(out, { failures: REFUSED, note: '' });
    assert.equal(source.asked, 0);
    assert.deepEqual(clock.sleeps, []);
  });

  test('a holder that renews again while we retry: the wait stops, saying so', async () => {
    const clock = fakeClock();
    const log = logger();
    const retry = lvchange(clock, Infinity);
    const source = holders(clock, 7000, (now) => (now >= 9000 ? { dead: false, why: 'vg0/lv1: hvA is alive (renewed 1 s ago)' } : undefined));
    const out = await waitForDeadHolders(deps(clock, log, source), 'prepare of domain db', REFUSED, 108_000, retry);
    assert.deepEqual(out.failures, REFUSED);
    assert.equal(out.note, " (waited 9 s for the holders' leases to expire, then stopped: vg0/lv1: hvA is alive (renewed 1 s ago))");
    assert.deepEqual(retry.tries, [9000]);
    assert.match(log.notices.at(-1)!, /stopped waiting for the holders after 9 s: vg0\/lv1: hvA is alive/);
  });

  test('sanlock still refusing at the deadline: the retries stop in time for the refusal', async () => {
    const clock = fakeClock();
    const retry = lvchange(clock, Infinity);
    const out = await waitForDeadHolders(deps(clock, logger(), holders(clock, 7000)), 'prepare of domain db', REFUSED, 20_000, retry);
    assert.deepEqual(out.failures, REFUSED);
    assert.match(out.note, /sanlock still refused when the hook's time ran out/);
    assert.deepEqual(retry.tries, [9000, 11_000, 13_000, 15_000, 17_000]);
    assert.ok(clock.t <= 20_000);
  });
});

describe('the prepare hook with hook.wait_for_dead_holder', () => {
  const UUID = '6f1a0000-0000-4000-8000-0000000000db';
  const XML = `<domain type="kvm"><name>db</name><uuid>${UUID}</uuid><devices><disk type="block" device="disk"><source dev="/dev/vg0/lv1"/><target dev="vda"/></disk></devices></domain>`;

  /** A gateway whose lvm refuses vg0/lv1 until `grantAtMs` on the fake clock. */
  function gateway(wait: boolean, grantAtMs: number, clock = fakeClock(), freeAtMs = 7000, hookTimeoutMs = 120_000) {
    const log = logger();
    const changes: string[] = [];
    const change = async (vg: string, lvs: string[], to: string): Promise<ChangeResult> => {
      changes.push(`${to} at ${clock.now()}`);
      if (clock.now() >= grantAtMs) return { ok: true, argv: [], rc: 0, ms: 1, stderr: '', failures: [] };
      return { ok: false, argv: [], rc: 5, ms: 1, stderr: '', failures: lvs.map((lv) => ({ lv: { vg, lv }, cls: 'locked-by-other-host' as const, message: `LV locked by other host: ${vg}/${lv}` })) };
    };
    const source = { ...holders(clock, freeAtMs), describe: async () => ['vg0/lv1: locked by hvA (host_id 1); hvA has not renewed its lease for 133 s'] };
    const ctx = makeContext({
      table: new LockTable(),
      logger: log,
      audit: new AuditLog(log),
      clock,
      hookTimeoutMs: () => hookTimeoutMs,
      actions: () => ({ prepare: 'exclusive', start: 'none', started: 'none', stopped: 'unlock', release: 'unlock', migrate: 'shared', restore: 'none', reconnect: 'none', attach: 'none' }),
      resolver: {
        resolve: async () => ({ wanted: new Map([['vg0/lv1', 'ex']]), aliases: new Map(), errors: [] }),
        refreshVgs: async () => undefined,
        setPools: () => undefined,
        managedVgs: () => ['vg0'],
      },
      // libvirt lists nothing yet: QEMU starts only after the prepare hook.
      libvirt: { storagePools: async () => [], listActiveDomains: async () => [] },
      lvm: { change, heldLocks: async () => [] },
      holders: source,
      waitForDeadHolder: () => wait,
    } as unknown as CoordinatorDeps);
    const transitions = new Transitions(ctx);
    const lifecycle = new Lifecycle(ctx, transitions, { send: () => undefined } as never);
    const reconciler = new Reconciler(ctx, transitions, lifecycle, undefined as never, undefined as never);
    reconciler.ready = true;
    const g = new HookGateway(ctx, transitions, lifecycle, undefined as never, undefined as never, reconciler);
    return { g, ctx, changes, log, reconciler };
  }

  test('on: the start waits for the expiry and takes ex with the lvchange sanlock grants', async () => {
    const { g, ctx, changes } = gateway(true, 7000);
    assert.equal(await g.hook({ name: 'db', op: 'prepare', subop: 'begin', extra: '-', xml: XML }), 'domain db: vg0/lv1 ex');
    assert.deepEqual(changes, ['ex at 0', 'ex at 9000']);
    assert.equal(ctx.table.domains.get(UUID)?.phase, 'starting');
  });

  test('off: the start is refused at once, naming the holder', async () => {
    const { g, changes } = gateway(false, 7000);
    await assert.rejects(g.hook({ name: 'db', op: 'prepare', subop: 'begin', extra: '-', xml: XML }), /^Error: prepare of domain db refused: vg0\/lv1: locked by hvA \(host_id 1\); hvA has not renewed its lease for 133 s$/);
    assert.deepEqual(changes, ['ex at 0', 'off at 0'], 'one try, then the rollback');
  });

  test('a reconcile during a long wait does not take the start for a gone domain and release the lock it then got', async () => {
    // The holder's lease frees 140 s on, past the 120 s in which a reconcile keeps a start that
    // libvirt does not list yet: a reconcile 130 s into the wait plans to forget the domain, and
    // runs that plan once the hook is done with the domain.
    const clock = fakeClock();
    let reconcile: Promise<unknown> | undefined;
    const sleep = clock.sleep;
    clock.sleep = async (ms: number) => {
      await sleep(130_000);
      reconcile = env.reconciler.reconcile('timer');
      await new Promise((resolve) => setTimeout(resolve, 20));
      await sleep(ms - 130_000);
    };
    const env = gateway(true, 140_000, clock, 140_000, 180_000);
    assert.equal(await env.g.hook({ name: 'db', op: 'prepare', subop: 'begin', extra: '-', xml: XML }), 'domain db: vg0/lv1 ex');
    assert.ok(reconcile, 'a reconcile ran during the wait');
    await reconcile;
    assert.deepEqual(env.changes, ['ex at 0', 'ex at 142000'], 'nothing released');
    assert.equal(env.ctx.table.domains.get(UUID)?.phase, 'starting');
  });
});
