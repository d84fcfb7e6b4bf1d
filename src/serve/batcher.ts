// Dynamic batching: items submitted one by one (by concurrent requests) are gathered and
// run together, which is how a server makes a network's batched kernels pay. A batch
// runs when `maxBatch` items wait, or `maxWaitMs` after its first item arrived, or at
// once while draining (the server is closing). The queue holds at most `maxQueue`
// items: beyond that submit() refuses at once (QueueFullError) rather than let waits grow.

export interface BatcherOptions {
  maxBatch: number;
  maxWaitMs: number;
  maxQueue: number;
}

export interface BatchObserver {
  /** Called after each batch ran (or failed), with its size. */
  batchRan?: (size: number, seconds: number) => void;
}

/** The queue is full: the caller should answer "busy, try again later". */
export class QueueFullError extends Error {
  override readonly name = 'QueueFullError';
}

interface Waiting<T, R> {
  item: T;
  /** performance.now() when it was queued. */
  since: number;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

export class Batcher<T, R> {
  private readonly queue: Waiting<T, R>[] = [];
  private timer: NodeJS.Timeout | null = null;
  private scheduled = false;
  private draining = false;

  /** `run` takes a batch of items and returns one result per item, in order; it may throw (the batch's items are rejected). */
  constructor(private readonly run: (items: T[]) => R[], readonly opts: BatcherOptions, private readonly observer: BatchObserver = {}) {
    for (const [k, v] of Object.entries(opts)) {
      if (!Number.isInteger(v) || v < (k === 'maxWaitMs' ? 0 : 1)) throw new RangeError(`Batcher: ${k} must be an integer >= ${k === 'maxWaitMs' ? 0 : 1}, got ${v}`);
    }
  }

  /** Items waiting for a batch. */
  get depth(): number {
    return this.queue.length;
  }

  /** Throws QueueFullError unless `n` more items fit in the queue now. */
  checkRoom(n: number): void {
    if (this.queue.length + n > this.opts.maxQueue) {
      throw new QueueFullError(`the queue is full (${this.queue.length} of ${this.opts.maxQueue} images waiting)`);
    }
  }

  /**
   * Queue `items` (all or none) and resolve with their results, in order. Throws
   * QueueFullError without queueing anything when they do not all fit.
   */
  submitAll(items: readonly T[]): Promise<R[]> {
    this.checkRoom(items.length);
    const since = performance.now();
    const results = items.map((item) => new Promise<R>((resolve, reject) => this.queue.push({ item, since, resolve, reject })));
    this.schedule();
    return Promise.all(results);
  }

  /** From now on, run whatever waits at once instead of waiting for a batch to fill. */
  drain(): void {
    this.draining = true;
    this.schedule();
  }

  /** Run the next batch at once when full or draining, else when its oldest item will have waited maxWaitMs. */
  private schedule(): void {
    const oldest = this.queue[0];
    if (oldest === undefined || this.scheduled) return;
    const wait = this.opts.maxWaitMs - (performance.now() - oldest.since);
    if (this.draining || this.queue.length >= this.opts.maxBatch || wait <= 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.scheduled = true;
      // setImmediate, not a direct call: requests whose bytes already arrived join this batch.
      setImmediate(() => this.flush());
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.scheduled = true;
        this.flush();
      }, wait);
    }
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue.splice(0, this.opts.maxBatch);
    if (batch.length > 0) {
      const start = process.hrtime.bigint();
      try {
        const results = this.run(batch.map((w) => w.item));
        if (results.length !== batch.length) throw new Error(`a batch of ${batch.length} gave ${results.length} results`);
        batch.forEach((w, i) => w.resolve(results[i]!));
      } catch (e) {
        for (const w of batch) w.reject(e);
      }
      this.observer.batchRan?.(batch.length, Number(process.hrtime.bigint() - start) / 1e9);
    }
    this.schedule();
  }
}
