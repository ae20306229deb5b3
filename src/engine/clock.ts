/**
 * Time as the engine's executors see it. The daemon uses the system clock; the cluster
 * simulation injects a virtual one, so a whole run is decided by its seed and replays exactly.
 */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  /** Calls `fn` once after `ms`. Such timers never keep the daemon's process alive. */
  after(ms: number, fn: () => void): Timer;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const handle = setTimeout(fn, ms);
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
