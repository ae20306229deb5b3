import type { LockMode } from '../locks/lv.js';

/**
 * The LVs this daemon took, remembered across daemon restarts so that reconcile releases only
 * those: an LV an admin activated by hand (a copy, a backup, a volume upload) is never ours to
 * release. Each record also names the domain it was taken for and that domain's own mode, so a
 * restarted daemon that cannot resolve some of a running domain's disks still knows they are its.
 * The record lives in the runtime directory, which is cleared at boot like the activations.
 */
export interface OwnedLv {
  lv: string;
  domain?: string;
  mode?: LockMode;
}

export interface OwnedStore {
  load(): Promise<OwnedLv[]>;
  save(records: OwnedLv[]): Promise<void>;
}

export function memoryOwnedStore(initial: OwnedLv[] = []): OwnedStore & { saved: OwnedLv[] } {
  const store = {
    saved: [...initial],
    load: async () => store.saved.map((r) => ({ ...r })),
    save: async (records: OwnedLv[]) => {
      store.saved = records.map((r) => ({ ...r }));
    },
  };
  return store;
}

/**
 * The set of owned LVs and its persistence. A claim is saved before the lvchange that takes the
 * LV, so a crash in between leaves at worst a claim on an LV that is not held, which is harmless;
 * the opposite order could leave a lock of ours that a restarted daemon would think foreign.
 */
export class Ownership {
  private writing: Promise<void> = Promise.resolve();
  private loaded: Promise<void> | undefined;

  constructor(
    readonly lvs: Map<string, Omit<OwnedLv, 'lv'>>,
    private readonly store: OwnedStore,
    private readonly onError: (message: string) => void,
  ) {}

  /** Reads the record once; later calls wait for that first read. */
  ready(): Promise<void> {
    this.loaded ??= this.store.load().then(
      (records) => {
        for (const { lv, ...owner } of records) if (!this.lvs.has(lv)) this.lvs.set(lv, owner);
      },
      (err: unknown) => this.onError(`cannot read which LVs this daemon took before: ${(err as Error).message}; held LVs no domain uses count as not ours`),
    );
    return this.loaded;
  }

  has(lv: string): boolean {
    return this.lvs.has(lv);
  }

  /** Records the LVs as ours, for the given domain and its own modes. */
  claim(records: OwnedLv[]): Promise<void> {
    let changed = false;
    for (const { lv, domain, mode } of records) {
      const old = this.lvs.get(lv);
      if (old && old.domain === domain && old.mode === mode) continue;
      this.lvs.set(lv, { domain, mode });
      changed = true;
    }
    return changed ? this.persist() : this.writing;
  }

  disclaim(lvs: Iterable<string>): Promise<void> {
    let changed = false;
    for (const lv of lvs) changed = this.lvs.delete(lv) || changed;
    return changed ? this.persist() : this.writing;
  }

  /** Writes one after another, each the set as it is when its turn comes. */
  private persist(): Promise<void> {
    this.writing = this.writing.then(async () => {
      try {
        await this.store.save([...this.lvs].sort(([a], [b]) => a.localeCompare(b)).map(([lv, owner]) => ({ lv, ...owner })));
      } catch (err) {
        this.onError(`cannot record which LVs this daemon holds: ${(err as Error).message}; after a restart they would count as not ours and be left alone`);
      }
    });
    return this.writing;
  }
}
