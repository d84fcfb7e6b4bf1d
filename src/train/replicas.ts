// Data-parallel training on one machine: the model runs as R replicas, this thread's and
// R - 1 more in worker threads, each on its share of every batch with its own OpenMP
// threads. A step's kernels are many and small, so one model gains little from a second
// core (each kernel is a parallel region of its own); replicas keep every core busy for
// the whole step. Before a step the workers copy this thread's weights out of shared
// memory; after it this thread averages their gradients (weighted by their shares) into
// its own, and the optimizer steps once, here. Batch norm normalises each share by its
// own statistics, as under PyTorch's DistributedDataParallel without SyncBatchNorm; the
// running statistics are this thread's replica's.
import { Worker } from 'node:worker_threads';
import { backend, precision } from '../backend/index.js';
import { nativeThreads, setNativeThreads } from '../backend/native.js';
import type { MixTargets } from '../data/mix.js';
import type { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { lossAndBackward, type LossStep } from './loss-step.js';

/** What a worker builds: the model (by builder name, weights come from this thread each step) and how it computes. */
export interface ReplicaModel {
  model: string;
  numClasses: number;
  inChannels: number;
  width: number;
}

export interface ReplicaWorkerData {
  spec: ReplicaModel;
  backend: 'native' | 'reference';
  precision: 'fp32' | 'bf16';
  threads: number;
  labelSmoothing: number;
  /** Shapes of the parameters in model.parameters() order, checked against the worker's model. */
  paramShapes: number[][];
  modules: number;
  /** [1, H, W, C] of one image. */
  imageShape: number[];
  maxRows: number;
  params: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  x: SharedArrayBuffer;
  labels: SharedArrayBuffer;
  logits: SharedArrayBuffer;
}

/**
 * A step's order to a worker: rows in x/labels, their mixed targets' partner labels and
 * weight (null: not mixed), and which modules train and which parameters get gradients.
 */
export interface ReplicaStep {
  rows: number;
  mix: MixTargets | null;
  training: Uint8Array;
  requiresGrad: Uint8Array;
}

export type ReplicaReply = { ok: true; loss: number } | { ok: false; problem: string } | { ok: false; error: string };

export interface ReplicaOptions {
  /** Replicas in all, this thread's included (>= 2). */
  replicas: number;
  labelSmoothing?: number;
  /** The largest batch a step is given. */
  maxBatch: number;
}

interface WorkerSlot {
  worker: Worker;
  grads: Float32Array;
  x: Float32Array;
  labels: Int32Array;
  logits: Float32Array;
  pending: { resolve: (r: ReplicaReply) => void; reject: (e: Error) => void } | null;
  failed: Error | null;
}

/** Where each share starts: R nearly equal shares in order, the last one this thread's. */
export function shareBounds(rows: number, replicas: number): number[] {
  const bounds = [0];
  const base = Math.floor(rows / replicas);
  const extra = rows % replicas;
  for (let r = 0; r < replicas; r++) bounds.push(bounds[r]! + base + (r < extra ? 1 : 0));
  return bounds;
}

/** Rows [a, b) of a batch's mixed targets. */
function shareOf(mix: MixTargets | null, a: number, b: number): MixTargets | null {
  return mix && { labels: mix.labels.slice(a, b), weight: mix.weight };
}

export class Replicas {
  private readonly slots: WorkerSlot[] = [];
  private params = new Float32Array(new SharedArrayBuffer(0));
  /** [H, W, C] of an image, fixed by the first batch. */
  private imageShape: readonly number[] = [];
  private perImage = 0;
  private threads = 1;
  private closed = false;

  private constructor(private readonly model: Module, private readonly spec: ReplicaModel, private readonly o: ReplicaOptions) {
    if (!(Number.isInteger(o.replicas) && o.replicas >= 2)) throw new RangeError(`replicas must be an integer >= 2, got ${o.replicas}`);
  }

  /** The worker threads, started by the first batch (its images' shape sizes the shared memory). */
  private startWorkers(imageShape: readonly number[]): void {
    const { model, spec, o } = this;
    const b = backend().name;
    if (b !== 'native' && b !== 'reference') throw new Error(`replicas need the native or reference backend, not '${String(b)}'`);
    const params = model.parameters();
    const total = params.reduce((s, p) => s + p.size, 0);
    this.params = new Float32Array(new SharedArrayBuffer(total * 4));
    this.imageShape = [...imageShape];
    this.perImage = imageShape.reduce((a, d) => a * d, 1);
    const allThreads = b === 'native' ? nativeThreads() : 1;
    this.threads = Math.max(1, Math.floor(allThreads / o.replicas));
    const maxRows = Math.ceil(o.maxBatch / o.replicas);
    const classes = spec.numClasses;
    for (let r = 0; r < o.replicas - 1; r++) {
      const data: ReplicaWorkerData = {
        spec, backend: b, precision: precision(), threads: this.threads, labelSmoothing: o.labelSmoothing ?? 0,
        paramShapes: params.map((p) => [...p.shape]), modules: model.namedModules().length,
        imageShape: [1, ...imageShape], maxRows,
        params: this.params.buffer,
        grads: new SharedArrayBuffer(total * 4),
        x: new SharedArrayBuffer(maxRows * this.perImage * 4),
        labels: new SharedArrayBuffer(maxRows * 4),
        logits: new SharedArrayBuffer(maxRows * classes * 4),
      };
      const worker = new Worker(new URL('./replica-worker.js', import.meta.url), { workerData: data });
      const slot: WorkerSlot = {
        worker, grads: new Float32Array(data.grads), x: new Float32Array(data.x), labels: new Int32Array(data.labels),
        logits: new Float32Array(data.logits), pending: null, failed: null,
      };
      worker.on('message', (m: ReplicaReply) => {
        const p = slot.pending;
        slot.pending = null;
        worker.unref();
        p?.resolve(m);
      });
      const fail = (e: Error): void => {
        slot.failed = e;
        const p = slot.pending;
        slot.pending = null;
        p?.reject(e);
      };
      worker.on('error', fail);
      worker.on('exit', (code) => { if (!this.closed) fail(new Error(`a training replica's worker thread exited (code ${code})`)); });
      worker.unref();
      this.slots.push(slot);
    }
  }

  /** Start R - 1 worker threads for `model` (built by `spec` in each). */
  static start(model: Module, spec: ReplicaModel, o: ReplicaOptions): Replicas {
    return new Replicas(model, spec, o);
  }

  get count(): number {
    return this.o.replicas;
  }

  /**
   * Forward and backward over `x` split across the replicas. Afterwards each parameter's
   * grad holds the gradient of the mean loss over the whole batch (this thread's model
   * has it; the workers' only lend theirs). `mix`: the batch's mixed targets, if any.
   */
  async lossAndGradients(x: Tensor, labels: Int32Array, mix: MixTargets | null = null): Promise<LossStep> {
    if (this.closed) throw new Error('the training replicas were closed');
    const rows = labels.length;
    if (rows > this.o.maxBatch) throw new RangeError(`a batch of ${rows} rows, more than the ${this.o.maxBatch} the replicas were sized for`);
    const params = this.model.parameters();
    const shape = x.shape.slice(1);
    if (this.slots.length === 0) this.startWorkers(shape);
    if (shape.join('x') !== this.imageShape.join('x')) {
      throw new RangeError(`replicas: images of ${shape.join('x')}, but the first batch had ${this.imageShape.join('x')} (replicas need one image size)`);
    }
    if (rows < this.count) {
      // Too few rows for every replica to get one (a last short batch): this thread takes them all.
      return this.ownShare(x, labels, mix, 0, rows, false);
    }
    const bounds = shareBounds(rows, this.count);
    let off = 0;
    for (const p of params) {
      this.params.set(p.data, off);
      off += p.size;
    }
    const step: Omit<ReplicaStep, 'rows' | 'mix'> = {
      training: Uint8Array.from(this.model.namedModules(), ([, m]) => (m.training ? 1 : 0)),
      requiresGrad: Uint8Array.from(params, (p) => (p.requiresGrad ? 1 : 0)),
    };
    const replies = this.slots.map((slot, r) => {
      const [a, b] = [bounds[r]!, bounds[r + 1]!];
      slot.x.set(x.data.subarray(a * this.perImage, b * this.perImage));
      slot.labels.set(labels.subarray(a, b));
      return this.send(slot, { ...step, rows: b - a, mix: shareOf(mix, a, b) });
    });
    const [a, b] = [bounds[this.count - 1]!, rows];
    const mine = this.ownShare(x, labels, mix, a, b, true);
    const answers = await Promise.all(replies);
    if ('problem' in mine) return mine;
    let lossSum = mine.lossValue * (b - a);
    for (let r = 0; r < answers.length; r++) {
      const ans = answers[r]!;
      if (!ans.ok) {
        if ('problem' in ans) return { problem: ans.problem };
        throw new Error(`a training replica failed: ${ans.error}`);
      }
      lossSum += ans.loss * (bounds[r + 1]! - bounds[r]!);
    }
    this.averageGradients(params, bounds);
    const classes = mine.logits.shape[1]!;
    const logits = new Float32Array(rows * classes);
    this.slots.forEach((slot, r) => logits.set(slot.logits.subarray(0, (bounds[r + 1]! - bounds[r]!) * classes), bounds[r]! * classes));
    logits.set(mine.logits.data, a * classes);
    return { lossValue: lossSum / rows, logits: new Tensor(logits, [rows, classes]) };
  }

  /** Stop the worker threads. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private send(slot: WorkerSlot, step: ReplicaStep): Promise<ReplicaReply> {
    if (slot.failed) return Promise.reject(slot.failed);
    return new Promise((resolve, reject) => {
      slot.pending = { resolve, reject };
      slot.worker.ref();
      slot.worker.postMessage(step);
    });
  }

  /** Rows [a, b) on this thread's model; `shared`: the workers run too, so with a replica's OpenMP threads. */
  private ownShare(x: Tensor, labels: Int32Array, mix: MixTargets | null, a: number, b: number, shared: boolean): LossStep {
    const native = shared && backend().name === 'native';
    const before = native ? nativeThreads() : 1;
    if (native) setNativeThreads(this.threads);
    try {
      const shape = [b - a, ...x.shape.slice(1)];
      // A view of the batch, which nothing writes.
      const share = new Tensor(x.data.subarray(a * this.perImage, b * this.perImage), shape);
      return lossAndBackward(this.model, share, labels.subarray(a, b), { labelSmoothing: this.o.labelSmoothing ?? 0, mix: shareOf(mix, a, b) });
    } finally {
      if (native) setNativeThreads(before);
    }
  }

  /** grad = sum over replicas of (share rows / batch rows) x the replica's gradient of its mean loss. */
  private averageGradients(params: readonly Tensor[], bounds: number[]): void {
    const rows = bounds[bounds.length - 1]!;
    const own = (rows - bounds[this.count - 1]!) / rows;
    let off = 0;
    for (const p of params) {
      // A parameter this thread's replica gave no gradient is unused by every replica.
      if (p.requiresGrad && p.grad) {
        const d = p.grad.data;
        for (let i = 0; i < d.length; i++) d[i] = d[i]! * own;
        this.slots.forEach((slot, r) => {
          const w = (bounds[r + 1]! - bounds[r]!) / rows;
          const src = slot.grads;
          for (let i = 0; i < d.length; i++) d[i] = d[i]! + w * src[off + i]!;
        });
      }
      off += p.size;
    }
  }
}
