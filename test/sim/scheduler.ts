import type { Clock, Timer } from '../../src/engine/clock.js';

interface Entry {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Lets every promise continuation run: microtasks drain before the next macrotask. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Virtual time for the whole simulated cluster. Timers fire in (time, creation order), and the
 * promise continuations each one starts settle before the next fires, so the real async engine
 * code always runs to its next I/O or timer and a run depends on nothing but its seed.
 */
export class Scheduler implements Clock {
  private t = 1_700_000_000_000;
  private seq = 0;
  private queue: Entry[] = [];

  now(): number {
    return this.t;
  }

  after(ms: number, fn: () => void): Timer {
    const entry: Entry = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    // Sorted insert from the end: most new timers are the latest.
    let i = this.queue.length;
    while (i > 0 && (this.queue[i - 1]!.at > entry.at || (this.queue[i - 1]!.at === entry.at && this.queue[i - 1]!.seq > entry.seq))) i--;
    this.queue.splice(i, 0, entry);
    return { cancel: () => void (entry.cancelled = true) };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.after(ms, resolve));
  }

  /** Fires every timer due up to `until` in order, settling after each; ends with the clock at `until`. */
  async runUntil(until: number): Promise<void> {
    await settle();
    for (;;) {
      const next = this.queue[0];
      if (!next || next.at > until) break;
      this.queue.shift();
      if (next.cancelled) continue;
      this.t = Math.max(this.t, next.at);
      next.fn();
      await settle();
    }
    this.t = Math.max(this.t, until);
  }

  /** Timers still waiting (cancelled ones excluded). */
  pending(): number {
    let n = 0;
    for (const e of this.queue) if (!e.cancelled) n++;
    return n;
  }
}
