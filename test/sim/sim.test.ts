/**
 * The cluster simulation: thousands of seeded schedules of starts, stops, migrations, crashes
 * and message faults against real Coordinators, checked against DESIGN.md's invariants.
 * SIM_SEED=N (and SIM_STEPS=JSON from a failure report) replays one schedule; SIM_RUNS sets
 * how many seeds the default run tries.
 */
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { Step } from './ops.js';
import { describe, runSchedule, shrink, stepsFor } from './runner.js';
import { defaultClasses, FAULT_CLASSES, KNOWN_OPEN, type FaultClass } from './schedule.js';

const RUNS = Number(process.env.SIM_RUNS ?? 10_000);
const SEED = process.env.SIM_SEED === undefined ? undefined : Number(process.env.SIM_SEED);
/** Seeds tried for each known-open class, stopping at the first that fails. */
const KNOWN_OPEN_SEEDS = Number(process.env.SIM_KNOWN_OPEN_SEEDS ?? 300);

function classesFromEnv(): Set<FaultClass> {
  const wanted = process.env.SIM_CLASSES;
  if (!wanted) return SEED === undefined ? defaultClasses() : new Set(FAULT_CLASSES);
  return new Set(wanted.split(',').map((c) => c.trim()) as FaultClass[]);
}

const excluded = Object.entries(KNOWN_OPEN).map(([c, why]) => `${c}: ${why}`);

if (SEED !== undefined) {
  test(`replay of seed ${SEED}`, async (t) => {
    const steps = process.env.SIM_STEPS ? (JSON.parse(process.env.SIM_STEPS) as Step[]) : stepsFor(SEED, classesFromEnv());
    const r = await runSchedule(SEED, steps, classesFromEnv().has('demote-without-migration') || process.env.SIM_STEPS !== undefined);
    if (r.violation) {
      console.log(r.log.join('\n'));
      console.log(describe(r));
    }
    t.diagnostic(`${r.steps.length} steps on ${r.hosts} hosts`);
    assert.equal(r.violation, undefined, r.violation && describe(r));
  });
} else {
  test(`${RUNS} seeded schedules keep every invariant (known-open classes excluded)`, async (t) => {
    console.log(`cluster simulation: EXCLUDED fault classes (known open holes, fixes pending):\n  ${excluded.join('\n  ')}`);
    for (const line of excluded) t.diagnostic(`EXCLUDED ${line}`);
    const classes = [...classesFromEnv()];
    const workers = Math.max(1, Math.min(4, availableParallelism()));
    const started = Date.now();
    const chunk = Math.ceil(RUNS / workers);
    const results = await Promise.all(
      Array.from({ length: workers }, (_, i) => {
        const job = { from: 1 + i * chunk, to: 1 + Math.min(RUNS, (i + 1) * chunk), classes };
        return new Promise<{ runs: number; failures: Array<{ seed: number; text: string }> }>((resolve, reject) => {
          const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: job });
          w.once('message', resolve);
          w.once('error', reject);
        });
      }),
    );
    const runs = results.reduce((n, r) => n + r.runs, 0);
    const failures = results.flatMap((r) => r.failures).sort((a, b) => a.seed - b.seed);
    const secs = (Date.now() - started) / 1000;
    t.diagnostic(`${runs} schedules in ${secs.toFixed(1)} s (${Math.round(runs / secs)}/s) on ${workers} threads`);
    if (failures.length) {
      const first = failures[0]!;
      const shrunk = await shrink(await runSchedule(first.seed, stepsFor(first.seed, new Set(classes)), classes.includes('demote-without-migration')));
      console.log(`${failures.length} failing seeds: ${failures.slice(0, 20).map((f) => f.seed).join(' ')}\nshrunk:\n${describe(shrunk)}`);
    }
    assert.equal(failures.length, 0, failures[0]?.text);
  });

  for (const [cls, why] of Object.entries(KNOWN_OPEN) as Array<[FaultClass, string]>) {
    test(`known-open class ${cls} keeps every invariant`, { todo: why }, async (t) => {
      const classes = defaultClasses();
      classes.add(cls);
      for (let seed = 1; seed <= KNOWN_OPEN_SEEDS; seed++) {
        const r = await runSchedule(seed, stepsFor(seed, classes), classes.has('demote-without-migration'));
        if (!r.violation) continue;
        const shrunk = await shrink(r);
        const text = describe(shrunk);
        console.log(`known-open class ${cls}:\n${text}\nshrunk steps: ${shrunk.steps.length}`);
        t.diagnostic(text);
        assert.fail(text);
      }
    });
  }
}
