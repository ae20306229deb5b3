/**
 * What happened over time, for invariants between the harness's own steps and for failure
 * messages: the simulator's lock state sampled every few milliseconds, the hook calls (from the
 * 00-log hook), libvirt's lifecycle events and the LVM commands the daemons ran.
 */
import { readFile } from 'node:fs/promises';
import type { LockMode } from '../../src/locks/lv.js';
import { readClusterState } from '../lvm-sim/state.js';
import { type DomainEventRecord, EVENT_NAMES } from './libvirt-api.js';
import type { HookCall } from './instance.js';

/** LV key -> host id -> mode. */
export type Holders = Record<string, Record<number, LockMode>>;

export interface LockSample {
  /** The state was read at some moment between a and b (epoch ms). */
  a: number;
  b: number;
  holders: Holders;
}

export async function readHolders(stateFile: string): Promise<Holders> {
  const state = await readClusterState(stateFile);
  const holders: Holders = {};
  for (const lv of state.lvs) {
    if (lv.holders.length === 0) continue;
    holders[lv.key] = {};
    for (const h of lv.holders) holders[lv.key][h.hostId] = h.mode;
  }
  return holders;
}

/** Polls the simulator's state file (written atomically by rename) until stopped. */
export class LockSampler {
  readonly samples: LockSample[] = [];
  readonly errors: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly stateFile: string,
    private readonly intervalMs = 25,
  ) {}

  start(): void {
    this.running = true;
    const tick = () => {
      if (!this.running) return;
      this.inFlight = this.sampleOnce().finally(() => {
        if (this.running) this.timer = setTimeout(tick, this.intervalMs);
      });
    };
    tick();
  }

  private async sampleOnce(): Promise<void> {
    const a = Date.now();
    try {
      const holders = await readHolders(this.stateFile);
      this.samples.push({ a, b: Date.now(), holders });
      // About 40 samples a second: bounded so that a long run cannot grow without limit.
      if (this.samples.length > 200_000) this.samples.splice(0, 100_000);
    } catch (err) {
      if (this.errors.length < 20) this.errors.push(`${new Date(a).toISOString()}: ${(err as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.inFlight;
  }

  /** Samples whose holders differ from the sample before: the lock history. */
  changes(): LockSample[] {
    const out: LockSample[] = [];
    let last = '';
    for (const s of this.samples) {
      const key = JSON.stringify(s.holders);
      if (key !== last) out.push(s);
      last = key;
    }
    return out;
  }
}

export interface QemuLifetime {
  host: string;
  hostId: number;
  domain: string;
  /** The `start begin` hook: QEMU is about to be executed and opens its disks. */
  start: number;
  /** The `stopped end` hook: QEMU is gone. Infinity while it runs. */
  end: number;
}

/** When a guest's QEMU existed on each host, from the hook calls libvirt made there. */
export function qemuLifetimes(hosts: Array<{ name: string; hostId: number; calls: HookCall[] }>): QemuLifetime[] {
  const lifetimes: QemuLifetime[] = [];
  for (const host of hosts) {
    const open = new Map<string, QemuLifetime>();
    for (const call of host.calls) {
      if (call.op === 'start' && call.subop === 'begin') {
        const life = { host: host.name, hostId: host.hostId, domain: call.domain, start: call.t, end: Infinity };
        open.set(call.domain, life);
        lifetimes.push(life);
      } else if (call.op === 'stopped' && call.subop === 'end') {
        const life = open.get(call.domain);
        if (life) life.end = call.t;
        open.delete(call.domain);
      }
    }
  }
  return lifetimes;
}

const describeHolders = (h: Record<number, LockMode> | undefined, names: Map<number, string>) =>
  h && Object.keys(h).length ? Object.entries(h).map(([id, mode]) => `${names.get(Number(id)) ?? `host ${id}`} ${mode}`).join(', ') : 'nobody';

/**
 * Violations in the sampled history: an LV ex on one host while held on another (invariant 1),
 * and a guest's QEMU existing on a host that did not hold its LVs at that moment. A sample counts
 * only when its whole read window lies inside the QEMU's lifetime, so sampling jitter cannot
 * invent a violation.
 */
export function historyViolations(
  samples: LockSample[],
  lifetimes: QemuLifetime[],
  lvsOfDomain: (domain: string) => string[],
  names: Map<number, string>,
  t0: number,
): string[] {
  const violations: string[] = [];
  const seen = new Set<string>();
  const report = (key: string, text: string) => {
    if (seen.has(key)) return;
    seen.add(key);
    violations.push(text);
  };
  const at = (t: number) => `+${((t - t0) / 1000).toFixed(3)}s`;
  for (const s of samples) {
    for (const [lv, holders] of Object.entries(s.holders)) {
      const modes = Object.values(holders);
      if (modes.includes('ex') && modes.length > 1) {
        report(`conflict ${lv} ${JSON.stringify(holders)}`, `${at(s.a)} ${lv} is ex on one host while held on another: ${describeHolders(holders, names)}`);
      }
    }
    for (const life of lifetimes) {
      if (s.a < life.start || s.b > life.end) continue;
      for (const lv of lvsOfDomain(life.domain)) {
        if (s.holders[lv]?.[life.hostId] === undefined) {
          report(
            `gap ${life.host} ${life.domain} ${lv} ${life.start}`,
            `${at(s.a)} ${life.domain}'s QEMU exists on ${life.host} (since ${at(life.start)}) but ${life.host} holds no lock on ${lv} (held by: ${describeHolders(s.holders[lv], names)})`,
          );
        }
      }
    }
  }
  return violations;
}

export interface SimLogLine {
  host: number;
  tool: string;
  argv: string[];
  rc: number;
  startMs: number;
  endMs: number;
}

export async function readSimLog(file: string): Promise<SimLogLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const lines: SimLogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      lines.push(JSON.parse(line) as SimLogLine);
    } catch {
      // A line cut by a killed writer.
    }
  }
  return lines;
}

export interface TimelineSources {
  t0: number;
  names: Map<number, string>;
  hosts: Array<{ name: string; calls: HookCall[]; events: DomainEventRecord[]; lvm: SimLogLine[] }>;
  lockChanges: LockSample[];
}

/** One merged, time-ordered listing of everything, relative to t0. */
export function formatTimeline(src: TimelineSources): string {
  const rows: Array<{ t: number; text: string }> = [];
  for (const host of src.hosts) {
    const h = host.name.padEnd(4);
    for (const c of host.calls) rows.push({ t: c.t, text: `${h} HOOK   ${c.domain} ${c.op} ${c.subop} ${c.extra}` });
    for (const e of host.events) {
      rows.push({ t: e.t, text: `${h} EVENT  (${e.event},${e.detail}) ${EVENT_NAMES[e.event] ?? 'event'} ${e.uuid.slice(0, 8)}` });
    }
    for (const l of host.lvm) {
      // Reports are read all the time (reconcile); only changes matter in a timeline.
      const command = l.tool === 'lvm' ? l.argv[0] : l.tool;
      if (command === 'lvs' || command === 'vgs' || command === 'lvmlockctl' || command === 'version') continue;
      rows.push({ t: l.startMs, text: `${h} LVM    ${l.tool} ${l.argv.join(' ')} -> rc ${l.rc} (${l.endMs - l.startMs} ms)` });
    }
  }
  for (const s of src.lockChanges) {
    const lvs = Object.keys(s.holders).sort();
    rows.push({ t: s.a, text: `     LOCKS  ${lvs.length ? lvs.map((lv) => `${lv}: ${describeHolders(s.holders[lv], src.names)}`).join('; ') : 'none held'}` });
  }
  rows.sort((x, y) => x.t - y.t);
  return rows.map((r) => `${`+${((r.t - src.t0) / 1000).toFixed(3)}`.padStart(9)}  ${r.text}`).join('\n');
}
