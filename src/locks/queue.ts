/**
 * Runs tasks one after another per key (a domain UUID), so the events, hook calls and reconcile
 * fixes of one domain never interleave, while different domains proceed in parallel.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  get size(): number {
    return this.tails.size;
  }

  /** Resolves when every queued task has finished (used at shutdown). */
  async drain(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }
}

/**
 * Mutual exclusion per LV: every lvchange holds the keys of the LVs it names, so a release of an
 * orphaned lock can never run between another domain registering that LV and locking it.
 * Keys are taken in sorted order, so two multi-LV holders cannot deadlock.
 */
export class KeyedMutex {
  private readonly held = new Map<string, Promise<void>>();

  async lock(keys: string[]): Promise<() => void> {
    const sorted = [...new Set(keys)].sort();
    const releases: Array<() => void> = [];
    for (const key of sorted) releases.push(await this.lockOne(key));
    return () => {
      for (const release of releases.reverse()) release();
    };
  }

  private async lockOne(key: string): Promise<() => void> {
    for (;;) {
      const current = this.held.get(key);
      if (!current) break;
      await current;
    }
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    this.held.set(key, done);
    return () => {
      if (this.held.get(key) === done) this.held.delete(key);
      release();
    };
  }
}
