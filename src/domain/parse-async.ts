import { Worker } from 'node:worker_threads';
import { DomainXmlError, parseDomainXml, type DomainDisks } from './disks.js';
import type { ParseAnswer, ParseJob } from './parse-worker.js';

/**
 * Parses a domain XML without holding up the daemon's other work. Parsing is synchronous and
 * costs about half a millisecond per KiB, so a domain with megabytes of <metadata> would stall
 * every other guest's hook for seconds: XML above a size threshold is parsed in a worker thread,
 * bounded by a timeout that terminates the worker. Small XML (nearly all of it) is parsed in
 * place, where a worker round trip would cost more than the parse.
 */
export interface ParserOptions {
  /** XML of at most this many characters is parsed on the calling thread. */
  inPlaceLimit: number;
  /** Longest parse in a worker; the worker is terminated past it. */
  timeoutMs: number;
  /** Workers parsing at once; further jobs wait for one to be free. */
  maxWorkers: number;
  /** A worker idle this long is ended, so a rare large XML does not keep a thread around. */
  idleMs: number;
  /** Heap bound of a worker: a hostile XML must not take the daemon's memory with it. */
  maxHeapMb: number;
}

export const DEFAULT_PARSER_OPTIONS: ParserOptions = { inPlaceLimit: 64 * 1024, timeoutMs: 30_000, maxWorkers: 1, idleMs: 10_000, maxHeapMb: 1024 };

// Compiled JS sits next to this file in dist/, so the worker is found the same way at run time.
const WORKER_URL = new URL('./parse-worker.js', import.meta.url);

interface Job {
  xml: string;
  resolve: (value: DomainDisks) => void;
  reject: (err: Error) => void;
}

class PooledWorker {
  busy = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(readonly worker: Worker) {}

  markBusy(): void {
    this.busy = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.worker.ref();
  }

  markIdle(idleMs: number, onIdle: () => void): void {
    this.busy = false;
    // An idle worker must never keep the process alive on its own.
    this.worker.unref();
    this.idleTimer = setTimeout(onIdle, idleMs);
    this.idleTimer.unref();
  }
}

export class DomainXmlParser {
  private readonly options: ParserOptions;
  private readonly workers = new Set<PooledWorker>();
  private readonly waiting: Job[] = [];
  private nextId = 1;

  constructor(options: Partial<ParserOptions> = {}) {
    this.options = { ...DEFAULT_PARSER_OPTIONS, ...options };
  }

  async parse(xml: string): Promise<DomainDisks> {
    if (typeof xml !== 'string' || xml.length <= this.options.inPlaceLimit) return parseDomainXml(xml);
    return new Promise<DomainDisks>((resolve, reject) => {
      this.waiting.push({ xml, resolve, reject });
      this.dispatch();
    });
  }

  /** Workers alive right now (for tests and status). */
  get workerCount(): number {
    return this.workers.size;
  }

  /** Ends every worker; jobs still waiting fail. */
  async close(): Promise<void> {
    for (const job of this.waiting.splice(0)) job.reject(new Error('the domain XML parser was closed'));
    await Promise.all([...this.workers].map((w) => this.retire(w)));
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      let pooled = [...this.workers].find((w) => !w.busy);
      if (!pooled) {
        if (this.workers.size >= this.options.maxWorkers) return;
        pooled = this.spawn();
      }
      this.run(pooled, this.waiting.shift() as Job);
    }
  }

  private spawn(): PooledWorker {
    const worker = new Worker(WORKER_URL, { resourceLimits: { maxOldGenerationSizeMb: this.options.maxHeapMb } });
    const pooled = new PooledWorker(worker);
    // A worker that dies while idle leaves the pool; without an error listener its death would
    // be thrown on the daemon's event loop. A running job hears of it through its own listeners.
    worker.on('error', () => undefined);
    worker.once('exit', () => this.workers.delete(pooled));
    this.workers.add(pooled);
    return pooled;
  }

  private run(pooled: PooledWorker, job: Job): void {
    pooled.markBusy();
    const id = this.nextId++;
    const { worker } = pooled;
    const what = describeXml(job.xml);
    let settled = false;
    const finish = (outcome: { value: DomainDisks } | { error: Error }, reusable: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      if ('value' in outcome) job.resolve(outcome.value);
      else job.reject(outcome.error);
      if (reusable) pooled.markIdle(this.options.idleMs, () => void this.retire(pooled));
      else void this.retire(pooled);
      this.dispatch();
    };
    const onMessage = (answer: ParseAnswer) => {
      if (answer.id !== id) return;
      if (answer.ok) finish({ value: answer.value }, true);
      else finish({ error: answer.domainXmlError ? new DomainXmlError(answer.message) : new DomainXmlError(`${what} cannot be read: ${answer.message}`) }, true);
    };
    const onError = (err: Error) => finish({ error: new DomainXmlError(`${what} cannot be read: the parser thread failed: ${err.message}`) }, false);
    const onExit = (code: number) => finish({ error: new DomainXmlError(`${what} cannot be read: the parser thread exited with code ${code}`) }, false);
    const timer = setTimeout(
      () => finish({ error: new DomainXmlError(`${what} cannot be read: parsing took longer than ${this.options.timeoutMs} ms and was stopped`) }, false),
      this.options.timeoutMs,
    );
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.postMessage({ id, xml: job.xml } satisfies ParseJob);
  }

  private async retire(pooled: PooledWorker): Promise<void> {
    if (!this.workers.delete(pooled)) return;
    await pooled.worker.terminate();
  }
}

/** "domain XML of "name" (10.2 MB)", read cheaply: the parse that would name it is what failed. */
export function describeXml(xml: string): string {
  const name = /<name>\s*([^<]{1,256}?)\s*<\/name>/.exec(xml.slice(0, 65536))?.[1];
  const size = `${(xml.length / 1048576).toFixed(1)} MB`;
  return name === undefined ? `domain XML (${size})` : `domain XML of "${name}" (${size})`;
}

const shared = new DomainXmlParser();

/** The daemon's one entry point for domain XML: every caller goes through it. */
export function parseDomainXmlAsync(xml: string): Promise<DomainDisks> {
  return shared.parse(xml);
}
