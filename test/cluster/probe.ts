/**
 * What the real stack says, read on both hosts: lvmlockd's LV lock modes (`lvmlockctl --info`),
 * the active device-mapper devices of the VG, and the running nested guests (`virsh list`). A
 * sampler reads all three on both hosts over and over while a step runs and checks the DESIGN.md
 * invariants on every sample: never ex on two hosts, never ex beside sh, every running guest's LV
 * locked on its host, and no LV active on a host that holds no lock for it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Hypervisor } from './hypervisor.js';
import { LVS, VG } from './stack.js';

const READ_MS = 60_000;

export type Mode = 'ex' | 'sh';

export interface HostView {
  host: string;
  /** Held LV locks by LV name. */
  locks: Map<string, Mode>;
  /** LVs of the VG with an active device-mapper device. */
  active: Set<string>;
  /** Running nested guests. */
  running: Set<string>;
}

/** LV uuid (no dashes) → LV name, read once: uuids never change. */
export async function lvUuids(hv: Hypervisor): Promise<Map<string, string>> {
  const out = await hv.mustRun(['lvs', '--noheadings', '-o', 'lv_name,lv_uuid', VG], { timeoutMs: READ_MS });
  const byUuid = new Map<string, string>();
  for (const line of out.split('\n')) {
    const [name, uuid] = line.trim().split(/\s+/);
    if (name && uuid) byUuid.set(uuid.replace(/-/g, ''), name);
  }
  return byUuid;
}

/**
 * `lvmlockctl --info` takes its answer on an abstract socket of a fixed name: two at once on a
 * host (this probe's and the daemon's reconcile) fail with "socket error -98". Try again.
 */
async function lockctlInfo(hv: Hypervisor): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const r = await hv.run(['lvmlockctl', '--info'], { timeoutMs: READ_MS });
    if (r.rc === 0 && !r.timedOut) return r.stdout;
    if (attempt >= 10 || !/socket error -98\b/.test(r.stdout + r.stderr)) {
      throw new Error(`${hv.host.name}: lvmlockctl --info: exit ${r.rc ?? r.signal}: ${(r.stderr || r.stdout).trim()}`);
    }
    await sleep(100 * attempt);
  }
}

export async function readHost(hv: Hypervisor, uuids: Map<string, string>): Promise<HostView> {
  const [info, dm, list] = await Promise.all([
    lockctlInfo(hv),
    hv.mustRun(['dmsetup', 'info', '-c', '--noheadings', '-o', 'name'], { timeoutMs: READ_MS }),
    hv.mustRun(['virsh', '-c', 'qemu:///system', 'list', '--name', '--state-running', '--state-paused'], { timeoutMs: READ_MS }),
  ]);
  const locks = new Map<string, Mode>();
  for (const line of info.split('\n')) {
    const [lk, kind, mode, uuid] = line.trim().split(/\s+/);
    if (lk !== 'LK' || kind !== 'LV' || !uuid || (mode !== 'ex' && mode !== 'sh')) continue;
    const name = uuids.get(uuid.replace(/-/g, ''));
    if (name) locks.set(name, mode);
  }
  const prefix = `${VG}-`;
  const active = new Set(
    dm.split('\n').map((l) => l.trim()).filter((n) => n.startsWith(prefix) && n !== `${prefix}lvmlock`).map((n) => n.slice(prefix.length)),
  );
  const running = new Set(list.split('\n').map((l) => l.trim()).filter(Boolean));
  return { host: hv.host.name, locks, active, running };
}

/** Which LVs each nested guest uses, for the "running guest holds its LVs" check. */
export type GuestDisks = Record<string, string[]>;

/**
 * Every invariant broken in one sample (empty when all hold). A sample is two rounds of reads,
 * host after host: [A1, B1, A2, B2]. The reads of one host are not atomic, and a handoff moves
 * locks between reads, so a state counts only when it held across a host's two reads: a conflict
 * between X and Y needs X's mode equal in both of X's rounds, with Y's read between them; a guest
 * running without its lock, or an LV active without one, must be seen so in both rounds.
 */
export function violations(rounds: [HostView[], HostView[]], disks: GuestDisks): string[] {
  const [first, second] = rounds;
  const found = new Set<string>();
  const hosts = first.map((v) => v.host);
  for (const lv of LVS) {
    for (let x = 0; x < hosts.length; x++) {
      const m1 = first[x]!.locks.get(lv);
      const m2 = second[x]!.locks.get(lv);
      if (m1 !== 'ex' || m2 !== 'ex') continue;
      // Reads between X's two: hosts after X in round one, hosts before X in round two.
      const between = [...first.slice(x + 1), ...second.slice(0, x)];
      for (const y of between) {
        const other = y.locks.get(lv);
        if (other) found.add(`${VG}/${lv}: ex on ${hosts[x]} while ${other} on ${y.host}`);
      }
    }
  }
  for (let x = 0; x < hosts.length; x++) {
    const [v1, v2] = [first[x]!, second[x]!];
    for (const lv of v1.active) if (v2.active.has(lv) && !v1.locks.has(lv) && !v2.locks.has(lv)) found.add(`${v1.host}: ${VG}/${lv} active without a lock`);
    for (const guest of v1.running) {
      if (!v2.running.has(guest)) continue;
      for (const lv of disks[guest] ?? []) if (!v1.locks.has(lv) && !v2.locks.has(lv)) found.add(`${v1.host}: guest ${guest} runs without a lock on ${VG}/${lv}`);
    }
  }
  return [...found];
}

export function describe(views: HostView[]): string {
  return views
    .map((v) => `${v.host}: locks {${[...v.locks].map(([lv, m]) => `${lv} ${m}`).join(', ')}} active {${[...v.active].join(', ')}} running {${[...v.running].join(', ')}}`)
    .join('; ');
}

export interface Sampled<T> {
  result: T;
  samples: number;
  violations: string[];
}

async function readRound(hosts: Hypervisor[], uuids: Map<string, string>): Promise<HostView[]> {
  const views: HostView[] = [];
  for (const hv of hosts) views.push(await readHost(hv, uuids));
  return views;
}

/** Runs step() while sampling all hosts back to back, and samples once more after it ends. */
export async function sampled<T>(hosts: Hypervisor[], uuids: Map<string, string>, disks: GuestDisks, step: () => Promise<T>): Promise<Sampled<T>> {
  let done = false;
  let samples = 0;
  const broken = new Set<string>();
  const sampleOnce = async () => {
    const rounds: [HostView[], HostView[]] = [await readRound(hosts, uuids), await readRound(hosts, uuids)];
    samples++;
    for (const v of violations(rounds, disks)) broken.add(`${v} (${describe(rounds[1])})`);
  };
  // A failed read ends the sampling; its error is the step's, once the step itself is over.
  let readError: unknown;
  const loop = (async () => {
    while (!done) await sampleOnce();
  })().catch((err: unknown) => {
    readError = err;
  });
  let result: T;
  try {
    result = await step();
  } finally {
    done = true;
    await loop;
  }
  if (readError !== undefined) throw readError;
  await sampleOnce();
  return { result, samples, violations: [...broken] };
}
