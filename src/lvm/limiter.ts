/**
 * Bounds how many LVM processes run at once. Each LVM command rescans devices and talks to
 * lvmlockd, so a burst (many domains starting together) is better queued than run all at once.
 * The limit is read on every acquire, so a config reload changes it for the next command.
 */
export class Limiter {
  private running = 0;
  private highest = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: () => number) {}

  get active(): number {
    return this.running;
  }

  /** The most commands that ran at the same time since this limiter was made. */
  get peak(): number {
    return this.highest;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  private currentLimit(): number {
    let value: number;
    try {
      value = Math.floor(this.limit());
    } catch {
      value = 1;
    }
    // A broken limit must neither stall every LVM command for ever nor lift the bound.
    return Number.isFinite(value) && value >= 1 ? value : 1;
  }

  private acquire(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiting.push(() => {
        this.take();
        resolve();
      });
      this.admit();
    });
  }

  private take(): void {
    this.running += 1;
    if (this.running > this.highest) this.highest = this.running;
  }

  private release(): void {
    this.running -= 1;
    this.admit();
  }

  /** Starts waiters while there is room; a raised limit can admit several at once, in arrival order. */
  private admit(): void {
    while (this.waiting.length > 0 && this.running < this.currentLimit()) {
      const next = this.waiting.shift();
      next?.();
    }
  }
}
