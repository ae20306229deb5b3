/**
 * The handoff's cost on real sanlock, printed by the cluster stage (a benchmark, not a timed
 * test): live migrations of `tiny` (ex, handed over by the daemons) against the same migrations of
 * `share` (a <shareable/> disk: sh on both hosts from the start, no handoff), alternated in one run;
 * how long after the source's QEMU stops the destination holds ex; and each step of the handoff
 * from both journals (lvchange times, the destination's migrate hook, the wait for ex).
 */
import { GUESTS, type Bed } from './bed.js';
import type { Hypervisor } from './hypervisor.js';
import { auditLines, clockOffset, daemonLines, guestNow } from './journal.js';
import { waitMode } from './lifecycle-tests.js';
import { migrateArgs, mustVirsh } from './nested.js';
import { VG } from './stack.js';

export interface HandoffSample {
  /** Wall time of `virsh migrate` for tiny and for share, ms. */
  handoffMs: number;
  shareMs: number;
  /** Destination ex minus source QEMU stop, both hosts' clocks brought to this process's. */
  exAfterStopMs: number;
  clockErrorMs: number;
  demoteMs: number;
  destShMs: number;
  destExMs: number;
  hookMs: number;
}

const QUICK_MS = 60_000;

/** When libvirt logged the source QEMU's end for a migration, in that host's clock (ms). */
async function migratedStop(hv: Hypervisor, name: string, since: number): Promise<number> {
  const log = await hv.mustRun(['cat', `/var/log/libvirt/qemu/${name}.log`], { timeoutMs: QUICK_MS });
  const stops = [...log.matchAll(/^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3})\+0000: shutting down, reason=migrated/gm)]
    .map((m) => Date.parse(`${m[1]}T${m[2]}Z`))
    .filter((t) => t >= since - 1000);
  if (stops.length === 0) throw new Error(`${hv.host.name}: no "shutting down, reason=migrated" line in ${name}.log since the migration began`);
  return stops.at(-1)!;
}

async function timedMigrate(from: Hypervisor, to: Hypervisor, name: string): Promise<number> {
  const t0 = performance.now();
  await mustVirsh(from, migrateArgs(name, to));
  return performance.now() - t0;
}

async function handoffRound(bed: Bed, from: Hypervisor, to: Hypervisor): Promise<HandoffSample> {
  const { name, lv } = GUESTS.tiny;
  const key = `${VG}/${lv}`;
  const [sinceFrom, sinceTo] = await Promise.all([guestNow(from), guestNow(to)]);
  const handoffMs = await timedMigrate(from, to, name);
  await waitMode(bed, to, lv, 'ex', 30_000);
  const shareMs = await timedMigrate(from, to, GUESTS.share.name);
  const [src, dst, stop, offFrom, offTo] = await Promise.all([daemonLines(from, sinceFrom), daemonLines(to, sinceTo), migratedStop(from, name, sinceFrom), clockOffset(from), clockOffset(to)]);
  const source = auditLines(src, key);
  const dest = auditLines(dst, key);
  const find = (lines: typeof source, move: string) => {
    const l = lines.find((x) => `${x.fields.FROM}>${x.fields.TO}` === move && x.fields.RESULT === 'ok');
    if (!l) throw new Error(`no ${move} audit line for ${key}: ${lines.map((x) => x.message).join(' | ')}`);
    return l;
  };
  const destEx = find(dest, 'sh>ex');
  const hook = dst.map((l) => new RegExp(`hook migrate begin of ${name}: allowed \\(.*\\) in (\\d+) ms`).exec(l.message)).find((m) => m);
  return {
    handoffMs,
    shareMs,
    exAfterStopMs: destEx.at - offTo.offsetMs - (stop - offFrom.offsetMs),
    clockErrorMs: offTo.errorMs + offFrom.errorMs,
    demoteMs: Number(find(source, 'ex>sh').fields.MS),
    destShMs: Number(find(dest, 'none>sh').fields.MS),
    destExMs: Number(destEx.fields.MS),
    hookMs: hook ? Number(hook[1]) : NaN,
  };
}

/** Runs `rounds` round trips of both guests and returns one sample per migration. */
export async function benchHandoff(bed: Bed, rounds: number): Promise<HandoffSample[]> {
  const { a, b } = bed;
  await bed.home(GUESTS.busy, false);
  for (const g of [GUESTS.tiny, GUESTS.share]) await bed.home(g, true);
  await waitMode(bed, a, GUESTS.tiny.lv, 'ex');
  const samples: HandoffSample[] = [];
  for (let i = 0; i < rounds; i++) {
    samples.push(await handoffRound(bed, a, b));
    samples.push(await handoffRound(bed, b, a));
  }
  return samples;
}

const median = (xs: number[]) => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((p, q) => p - q);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** The figures as printed lines, each beside its target. */
export function report(samples: HandoffSample[]): string[] {
  const m = (f: (s: HandoffSample) => number) => Math.round(median(samples.map(f)));
  const max = (f: (s: HandoffSample) => number) => Math.round(Math.max(...samples.map(f)));
  const added = m((s) => s.handoffMs - s.shareMs);
  const exAfter = m((s) => s.exAfterStopMs);
  const verdict = (v: number, target: number) => (v <= target ? 'within target' : 'OVER TARGET');
  return [
    `handoff benchmark: ${samples.length} migrations of each guest, alternated (medians; max in brackets)`,
    `  virsh migrate, handoff (ex LV): ${m((s) => s.handoffMs)} ms [${max((s) => s.handoffMs)}]; shareable LV, no handoff: ${m((s) => s.shareMs)} ms [${max((s) => s.shareMs)}]`,
    `  added by the handoff: ${added} ms (target <= 1500 ms: ${verdict(added, 1500)})`,
    `  destination ex after the source QEMU stopped: ${exAfter} ms [${max((s) => s.exAfterStopMs)}], clock error <= ${max((s) => s.clockErrorMs)} ms (target <= 1000 ms: ${verdict(exAfter, 1000)})`,
    `  breakdown: source lvchange ex>sh ${m((s) => s.demoteMs)} ms; destination lvchange none>sh ${m((s) => s.destShMs)} ms; destination migrate hook ${m((s) => s.hookMs)} ms; destination lvchange sh>ex ${m((s) => s.destExMs)} ms`,
  ];
}
