// The tape: gradients add up where a tensor is used more than once, the graph walk
// survives ResNet-1001 depths, noGrad records nothing, and misuse fails clearly.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backend, F, isGradEnabled, noGrad, Tensor, tensor } from '../src/index.js';
import { assertClose } from './helpers/fixtures.js';

function leaf(values: number[]): Tensor {
  return tensor(values, [values.length], true);
}

describe('gradient accumulation', () => {
  it('sums the gradients of a tensor used twice (y = 2x + x)', () => {
    const x = leaf([1, -2, 3]);
    F.sum(F.add(F.mulScalar(x, 2), x)).backward();
    assertClose(x.grad!.data, [3, 3, 3], 'dy/dx');
  });

  it('sums gradients over a residual-shaped graph: out = relu(x) * 3 + x', () => {
    const x = leaf([1.5, -0.5, 2]);
    F.sum(F.add(F.mulScalar(F.relu(x), 3), x)).backward();
    assertClose(x.grad!.data, [4, 1, 4], 'd out / dx');
  });

  it('keeps the gradients of two inputs apart when one gradient array reaches both', () => {
    // t = a + b hands one array to a and b; a later contribution to a must not
    // leak into b. Expected: d/da = 2 (through u) + 1 (through relu), d/db = 2.
    const a = leaf([1, 2, 3]);
    const b = leaf([0.5, 0.5, 0.5]);
    const t = F.add(a, b);
    const u = F.add(t, t);
    const v = F.relu(a);
    F.sum(F.add(v, u)).backward();
    assertClose(a.grad!.data, [3, 3, 3], 'gradient of a');
    assertClose(b.grad!.data, [2, 2, 2], 'gradient of b');
  });

  it('adds into .grad over successive backward calls, as PyTorch does', () => {
    const x = leaf([1, 2]);
    F.sum(F.mulScalar(x, 3)).backward();
    F.sum(F.mulScalar(x, 5)).backward();
    assertClose(x.grad!.data, [8, 8], 'accumulated gradient');
  });

  it('gives a leaf its own gradient array, not the one passed to backward', () => {
    const x = leaf([1, 2]);
    const y = F.reshape(x, [2]);
    const g = tensor([0.25, 4]);
    y.backward(g);
    g.data[0] = 100;
    assertClose(x.grad!.data, [0.25, 4], 'gradient of x');
  });
});

describe('bfloat16 tensors', () => {
  // Values exact in bfloat16 (8 significant bits), so the expected sums are exact too.
  const bf16 = (values: number[], requiresGrad = false): Tensor =>
    new Tensor(backend().toBf16(Float32Array.from(values)), [values.length], requiresGrad);

  it('read as float32 through data, keep their dtype through add, detach and clone', () => {
    const a = bf16([1.5, -2, 0.375]);
    assert.equal(a.dtype, 'bfloat16');
    assert.deepEqual(a.data, Float32Array.from([1.5, -2, 0.375]));
    const s = F.add(a, tensor([0.5, 1, 0.125]));
    assert.equal(s.dtype, 'bfloat16', 'bf16 + float32 stays bf16');
    assert.deepEqual(s.data, Float32Array.from([2, -1, 0.5]));
    assert.equal(F.addRelu(a, a).dtype, 'bfloat16');
    assert.equal(a.detach().dtype, 'bfloat16');
    assert.deepEqual(a.clone().storage, a.storage);
    assert.equal(F.mulScalar(a, 2).dtype, 'float32', 'ops without a bf16 kernel read float32 and write it');
  });

  it('get gradients of their own dtype, converted where float32 and bfloat16 ops meet', () => {
    // y = sum(relu(a + b) * 3 + a): a bf16 leaf, b float32; addRelu runs in bf16, mulScalar in float32.
    const a = bf16([1.5, -0.5, 2], true);
    const b = tensor([0.5, -1, 0.25], [3], true);
    F.sum(F.add(F.mulScalar(F.addRelu(a, b), 3), a)).backward();
    assert.equal(a.grad!.dtype, 'bfloat16');
    assert.equal(b.grad!.dtype, 'float32');
    assert.deepEqual(a.grad!.data, Float32Array.from([4, 1, 4]));
    assert.deepEqual(b.grad!.data, Float32Array.from([3, 0, 3]));
  });

  it('round a gradient to bfloat16 where the tensor is bfloat16', () => {
    const a = bf16([1, 2, 3], true);
    F.sum(F.mulScalar(a, 1 / 3)).backward();
    // 1/3 in bfloat16: 0.333984375 (bits 0x3eab).
    assert.deepEqual(a.grad!.data, Float32Array.from([0.333984375, 0.333984375, 0.333984375]));
  });
});

describe('deep graphs', () => {
  it('back-propagates through a 5000-op chain without overflowing the stack', () => {
    const x = leaf([1, 2]);
    let y = x;
    for (let i = 0; i < 5000; i++) y = F.mulScalar(y, 1.0001);
    F.sum(y).backward();
    const expected = 1.0001 ** 5000;
    assertClose(x.grad!.data, [expected, expected], 'gradient through 5000 scalings');
  });

  it('back-propagates through 2000 residual-style steps (each tensor used twice)', () => {
    // y <- 0.5 y + 0.5 y leaves y unchanged: every step uses its input twice, 6000 ops in all.
    const x = leaf([3, -1]);
    let y = x;
    for (let i = 0; i < 2000; i++) y = F.add(F.mulScalar(y, 0.5), F.mulScalar(y, 0.5));
    F.sum(y).backward();
    assertClose(x.grad!.data, [1, 1], 'gradient through 2000 residual steps');
  });
});

describe('noGrad', () => {
  it('records nothing and restores grad mode afterwards', () => {
    const x = leaf([1, 2]);
    const y = noGrad(() => {
      assert.equal(isGradEnabled(), false);
      return F.mulScalar(F.relu(x), 2);
    });
    assert.equal(isGradEnabled(), true);
    assert.equal(y.requiresGrad, false);
    assert.equal(y.node, null);
    assertClose(y.data, [2, 4], 'value computed under noGrad');
  });

  it('restores grad mode when the function throws', () => {
    assert.throws(() => noGrad(() => {
      throw new Error('inside');
    }), /inside/);
    assert.equal(isGradEnabled(), true);
  });

  it('detach() cuts the graph', () => {
    const x = leaf([1, 2]);
    const y = F.mulScalar(x, 2).detach();
    assert.equal(y.requiresGrad, false);
    assert.equal(y.node, null);
  });
});

describe('backward errors', () => {
  it('refuses a tensor that does not require grad', () => {
    assert.throws(() => F.sum(tensor([1, 2])).backward(), /does not require grad/);
  });

  it('refuses an implicit gradient for a tensor with more than one value', () => {
    assert.throws(() => F.relu(leaf([1, 2])).backward(), /one-value tensor.*\[2\]/);
  });

  it('refuses a gradient of the wrong shape, naming both shapes', () => {
    const y = F.relu(tensor([1, 2, 3, 4], [2, 2], true));
    assert.throws(() => y.backward(tensor([1, 2, 3], [3])), (e: unknown) =>
      e instanceof Error && e.message.includes('[3]') && e.message.includes('[2, 2]'));
  });

  it('refuses a second backward through a graph that was already freed', () => {
    const x = leaf([1, 2]);
    const loss = F.sum(F.mulScalar(x, 2));
    loss.backward();
    assert.throws(() => loss.backward(), /already/);
    assertClose(x.grad!.data, [2, 2], 'gradient after the refused second call');
  });
});
