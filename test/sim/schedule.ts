/**
 * The seeded generator of schedules. Each fault class can be switched off; the classes in
 * KNOWN_OPEN find holes of today's engine and stay out of the default run until fixed.
 */
import type { Step } from './ops.js';
import { Prng } from './prng.js';

export const FAULT_CLASSES = [
  'lifecycle',
  'live-migration',
  'migration-failure',
  'postcopy',
  'daemon-crash',
  'network',
  'offline-migration',
  'abandoned-incoming',
  'duplicate-incoming',
  'demote-without-migration',
  'lost-events',
  'partial-resolve',
  'admin-activation',
  'hotplug',
] as const;
export type FaultClass = (typeof FAULT_CLASSES)[number];

/** Classes that find open holes of the engine, with the reason they are left out of the default run. */
/** Every class that found a hole has it closed; a class found failing again goes here with its reason. */
export const KNOWN_OPEN: Partial<Record<FaultClass, string>> = {};

export function defaultClasses(): Set<FaultClass> {
  return new Set(FAULT_CLASSES.filter((c) => !(c in KNOWN_OPEN)));
}

export function generate(seed: number, classes: Set<FaultClass>, hostCount: number, length: number): Step[] {
  const p = new Prng(seed ^ 0x5eed5eed);
  const steps: Step[] = [];
  const host = () => p.int(hostCount);
  const guest = () => p.int(3);
  const gap = () => p.pick([0, 10, 200, 800, 2000, 6000, 20_000]);
  const hotplugFault = () => p.pick(['none', 'none', 'lose-event', 'daemon-crash'] as const);
  const other = (h: number) => (h + 1 + p.int(hostCount - 1)) % hostCount;
  const kinds: Array<[FaultClass, number, () => Step]> = [
    ['lifecycle', 6, () => ({ op: 'start', host: host(), guest: guest(), gap: gap() })],
    ['lifecycle', 2, () => ({ op: 'stop', host: host(), guest: guest(), how: p.pick(['shutdown', 'destroy', 'crash'] as const), gap: gap() })],
    ['lifecycle', 1, () => ({ op: 'reconcile', host: host(), gap: gap() })],
    ['live-migration', 5, () => { const from = host(); return { op: 'migrate', from, to: other(from), guest: guest(), fault: 'none', postcopy: false, loseEvents: false, gap: gap() }; }],
    ['migration-failure', 3, () => { const from = host(); return { op: 'migrate', from, to: other(from), guest: guest(), fault: p.pick(['prepare-fails', 'before-switchover', 'after-switchover'] as const), postcopy: false, loseEvents: false, gap: gap() }; }],
    ['postcopy', 1, () => { const from = host(); return { op: 'migrate', from, to: other(from), guest: guest(), fault: p.pick(['none', 'none', 'postcopy-fails'] as const), postcopy: true, loseEvents: false, gap: gap() }; }],
    ['daemon-crash', 1, () => ({ op: 'daemon-crash', host: host(), downMs: p.pick([100, 2000, 15_000]), gap: gap() })],
    ['network', 1, () => ({ op: 'net', loss: p.pick([0, 0.1, 0.3]), dup: p.pick([0, 0.1, 0.3]), gap: gap() })],
    ['offline-migration', 2, () => { const from = host(); return { op: 'offline', from, to: other(from), guest: guest(), gap: gap() }; }],
    ['abandoned-incoming', 2, () => { const from = host(); return { op: 'abandon', from, to: other(from), guest: guest(), gap: gap() }; }],
    ['duplicate-incoming', 1, () => ({ op: 'dup-incoming', host: host(), guest: guest(), gap: gap() })],
    ['demote-without-migration', 1, () => { const from = host(); return { op: 'rogue-demote', from, to: other(from), guest: guest(), gap: gap() }; }],
    ['lost-events', 2, () => { const from = host(); return { op: 'migrate', from, to: other(from), guest: guest(), fault: p.pick(['none', 'after-switchover'] as const), postcopy: false, loseEvents: true, gap: gap() }; }],
    ['lost-events', 1, () => ({ op: 'dbus-restart', host: host(), windowMs: p.pick([500, 3000]), gap: gap() })],
    ['partial-resolve', 1, () => ({ op: 'pools-broken', host: host(), gap: gap() })],
    ['admin-activation', 1, () => ({ op: 'admin-activate', host: host(), gap: gap() })],
    ['hotplug', 3, () => ({ op: 'attach', guest: guest(), lv: p.int(2), adminHost: p.chance(0.1) ? host() : null, fault: hotplugFault(), gap: gap() })],
    ['hotplug', 3, () => ({ op: 'detach', guest: guest(), lv: p.int(2), fault: hotplugFault(), gap: gap() })],
  ];
  const enabled = kinds.filter(([c]) => classes.has(c));
  const total = enabled.reduce((n, [, w]) => n + w, 0);
  for (let i = 0; i < length; i++) {
    let r = p.int(total);
    for (const [, w, make] of enabled) {
      if (r < w) {
        steps.push(make());
        break;
      }
      r -= w;
    }
  }
  return steps;
}
