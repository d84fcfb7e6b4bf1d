// A training replica's worker thread (see replicas.ts): builds the model, then for each
// step takes the weights and its rows from shared memory, runs forward and backward, and
// leaves its gradients and logits in shared memory.
import { parentPort, workerData } from 'node:worker_threads';
import { setBackend, setPrecision } from '../backend/index.js';
import { setNativeThreads } from '../backend/native.js';
import { create } from '../models/registry.js';
import { Tensor } from '../tensor/tensor.js';
import { lossAndBackward } from './loss-step.js';
import type { ReplicaReply, ReplicaStep, ReplicaWorkerData } from './replicas.js';

const d = workerData as ReplicaWorkerData;
setBackend(d.backend);
setPrecision(d.precision);
if (d.backend === 'native') setNativeThreads(d.threads);
const model = create(d.spec.model, { numClasses: d.spec.numClasses, inChannels: d.spec.inChannels, width: d.spec.width });
const params = model.parameters();
const modules = model.namedModules().map(([, m]) => m);
const shapes = JSON.stringify(params.map((p) => p.shape));
if (shapes !== JSON.stringify(d.paramShapes) || modules.length !== d.modules) {
  throw new Error(`the replica of ${d.spec.model} does not have the trained model's parameters: ${shapes.slice(0, 200)}`);
}
const weights = new Float32Array(d.params);
const grads = new Float32Array(d.grads);
const xs = new Float32Array(d.x);
const labels = new Int32Array(d.labels);
const logitsOut = new Float32Array(d.logits);
const perImage = d.imageShape.reduce((a, b) => a * b, 1);

function step(m: ReplicaStep): ReplicaReply {
  let off = 0;
  params.forEach((p, i) => {
    p.assign(weights.subarray(off, off + p.size));
    p.requiresGrad = m.requiresGrad[i] === 1;
    p.grad = null;
    off += p.size;
  });
  modules.forEach((mod, i) => { mod.training = m.training[i] === 1; });
  const x = new Tensor(xs.slice(0, m.rows * perImage), [m.rows, ...d.imageShape.slice(1)]);
  const r = lossAndBackward(model, x, labels.slice(0, m.rows), { labelSmoothing: d.labelSmoothing, mix: m.mix });
  if ('problem' in r) return { ok: false, problem: r.problem };
  off = 0;
  for (const p of params) {
    if (p.grad) grads.set(p.grad.data, off);
    else grads.fill(0, off, off + p.size);
    off += p.size;
  }
  logitsOut.set(r.logits.data);
  return { ok: true, loss: r.lossValue };
}

parentPort!.on('message', (m: ReplicaStep) => {
  let reply: ReplicaReply;
  try {
    reply = step(m);
  } catch (e) {
    reply = { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  parentPort!.postMessage(reply);
});
