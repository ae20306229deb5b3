/** Runs one seeded schedule against a fresh simulated cluster, and shrinks a failing one. */
import { checkAlways, checkSettled } from './invariants.js';
import { runStep, type Step } from './ops.js';
import { generate, type FaultClass } from './schedule.js';
import { World, type Violation } from './world.js';

export interface RunResult {
  seed: number;
  hosts: number;
  steps: Step[];
  violation?: Violation;
  strictDemote: boolean;
  log: string[];
}

export function hostsFor(seed: number): number {
  return 2 + (seed % 3);
}

export function stepsFor(seed: number, classes: Set<FaultClass>): Step[] {
  return generate(seed, classes, hostsFor(seed), 15 + (seed % 21));
}

/** Steps then settling: no new operation, faults healed, time past every grace and retry, a final reconcile. */
export async function runSchedule(seed: number, steps: Step[], strictDemote = true): Promise<RunResult> {
  const w = new World(seed, hostsFor(seed));
  w.strictDemote = strictDemote;
  const result = (): RunResult => ({ seed, hosts: w.hosts.length, steps, strictDemote, violation: w.violations[0], log: w.log });
  await w.clock.runUntil(w.clock.now() + 5_000);
  for (const step of steps) {
    w.inFlight++;
    void runStep(w, step)
      .catch((err: unknown) => w.violate('sim-error', `step ${JSON.stringify(step)} threw: ${(err as Error).stack ?? String(err)}`))
      .finally(() => w.inFlight--);
    await w.clock.runUntil(w.clock.now() + step.gap);
    checkAlways(w);
    if (w.violations.length) return result();
  }
  w.net = { loss: 0, dup: 0, staleDup: false };
  await w.clock.runUntil(w.clock.now() + 200_000);
  for (const h of w.hosts) {
    h.eventsLostUntil = 0;
    h.poolsBroken = false;
    if (!h.daemon) w.startDaemon(h);
  }
  await w.clock.runUntil(w.clock.now() + 100_000);
  checkAlways(w);
  for (const h of w.hosts) void h.daemon?.coordinator.reconcile('final').catch(() => undefined);
  await w.clock.runUntil(w.clock.now() + 60_000);
  checkAlways(w);
  checkSettled(w);
  return result();
}

/** Removes steps while the run still breaks the same invariant: the smallest schedule that shows it. */
export async function shrink(failing: RunResult): Promise<RunResult> {
  let best = failing;
  const invariant = failing.violation!.invariant;
  for (let chunk = Math.max(1, Math.floor(best.steps.length / 2)); chunk >= 1; chunk = Math.floor(chunk / 2)) {
    for (let i = 0; i < best.steps.length; ) {
      const candidate = [...best.steps.slice(0, i), ...best.steps.slice(i + chunk)];
      const r = await runSchedule(best.seed, candidate, failing.strictDemote);
      if (r.violation?.invariant === invariant) best = r;
      else i += chunk;
    }
    if (chunk === 1) break;
  }
  return best;
}

export function describe(r: RunResult): string {
  return [
    `seed ${r.seed} (${r.hosts} hosts) broke ${r.violation?.invariant}: ${r.violation?.message}`,
    `replay: SIM_SEED=${r.seed} SIM_STEPS='${JSON.stringify(r.steps)}' node --test dist/test/sim/`,
  ].join('\n');
}
