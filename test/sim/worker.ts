/** Runs a range of seeds in a worker thread, so the default run uses every core. */
import { parentPort, workerData } from 'node:worker_threads';
import { describe, runSchedule, stepsFor } from './runner.js';
import type { FaultClass } from './schedule.js';

interface Job {
  from: number;
  to: number;
  classes: FaultClass[];
}

const job = workerData as Job;
const classes = new Set(job.classes);
const failures: Array<{ seed: number; text: string }> = [];
for (let seed = job.from; seed < job.to; seed++) {
  const r = await runSchedule(seed, stepsFor(seed, classes), classes.has('demote-without-migration'));
  if (r.violation) failures.push({ seed, text: describe(r) });
}
parentPort!.postMessage({ runs: job.to - job.from, failures });
