// Every kernel of the native (oneDNN) backend against the reference backend, the
// executable spec, on ResNet shapes and on awkward ones: channel counts that are not
// multiples of oneDNN's 16-wide blocks, batch 1, stride 2 over odd sizes, 7x7 stride-2
// stems, 1x1 stride-2 projections, non-square kernels, padded pooling.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';

import { type Backend, type Conv2dAttrs, KERNEL_NAMES, type Pool2dAttrs, type SgdAttrs, type Shape4 } from '../src/backend/backend.js';
import { CONTROLS, loadNativeBinding } from '../src/backend/native-binding.js';
import { loadNativeBackend, nativeCpu, nativeThreads, setNativeThreads } from '../src/backend/native.js';
import { referenceBackend as ref } from '../src/backend/reference.js';
import { conv2dOutShape, numel, pool2dOutShape, subsampleSize } from '../src/backend/shapes.js';
import { Rng } from '../src/tensor/random.js';
import { setBackend } from '../src/backend/index.js';
import { cifarResNet, compileInference } from '../src/models/index.js';
import { BatchNorm2d } from '../src/nn/index.js';
import { noGrad, Tensor } from '../src/tensor/tensor.js';

// The native backend is required here: CI installs libdnnl-dev, so a missing addon is a failure.
let nativeBackend: Backend | null = null;
function native(): Backend {
  if (nativeBackend) return nativeBackend;
  try {
    nativeBackend = loadNativeBackend();
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    assert.fail(`native backend unavailable: ${why}. Install libdnnl-dev and run npm run build:native.`);
  }
  return nativeBackend;
}

const rng = new Rng(1234);

function randn(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

function uniform(n: number, lo: number, hi: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng.uniform();
  return a;
}

/** |actual - expected| <= atol + rtol * |expected| for every element. */
interface Tolerance {
  readonly atol: number;
  readonly rtol: number;
}

// Chosen from the largest deviations measured on this suite's inputs (unit-normal data,
// outputs up to about 60), with a margin of 3 to 10 over them.
/**
 * Kernels that sum in another order than the reference: float32 rounding of the partial
 * sums. Worst measured: 1.8e-6 beyond 1e-5 relative (a 7x7 stem's weight gradient, a
 * 64-term matmul).
 */
const SUMS: Tolerance = { atol: 1e-5, rtol: 1e-5 };
/**
 * Batch-norm backward and folded inference: rounding carried through several
 * reductions. Worst measured: 5.5e-7 beyond 1e-4 relative (dgamma; 2.9e-6 beyond 1e-5).
 */
const CHAINED: Tolerance = { atol: 1e-5, rtol: 1e-4 };
/** The same arithmetic in the same order (the SGD update, another thread count). Worst measured: 1.8e-7. */
const SAME_ORDER: Tolerance = { atol: 1e-6, rtol: 1e-6 };

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol: Tolerance = SUMS): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  let worst = -1;
  let worstRatio = 1;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i]! - expected[i]!);
    const allowed = tol.atol + tol.rtol * Math.abs(expected[i]!);
    // `!(err <= allowed)` also catches NaN.
    if (!(err <= allowed) && !(err / allowed <= worstRatio)) {
      worstRatio = err / allowed;
      worst = i;
    }
  }
  if (worst >= 0) {
    assert.fail(`${what}: element ${worst} is ${actual[worst]} but the reference gives ${expected[worst]} ` +
      `(|difference| ${Math.abs(actual[worst]! - expected[worst]!)}, allowed ${tol.atol} + ${tol.rtol} * |reference|)`);
  }
}

function attrs(stride: number | [number, number], pad: number | [number, number]): Conv2dAttrs {
  const [strideH, strideW] = typeof stride === 'number' ? [stride, stride] : stride;
  const [padH, padW] = typeof pad === 'number' ? [pad, pad] : pad;
  return { strideH, strideW, padH, padW };
}

interface ConvCase {
  readonly name: string;
  readonly x: Shape4;
  readonly w: Shape4;
  readonly a: Conv2dAttrs;
}

const convCases: ConvCase[] = [
  { name: '3x3 C16 (a ResNet-20 stage-1 conv)', x: [2, 8, 8, 16], w: [16, 16, 3, 3], a: attrs(1, 1) },
  { name: '3x3 stride 2, C3 -> 5, batch 1, 7x7', x: [1, 7, 7, 3], w: [5, 3, 3, 3], a: attrs(2, 1) },
  { name: '3x3 stride 2, C17, 9x9', x: [2, 9, 9, 17], w: [17, 17, 3, 3], a: attrs(2, 1) },
  { name: '7x7 stride 2 pad 3 stem, 15x15', x: [2, 15, 15, 3], w: [8, 3, 7, 7], a: attrs(2, 3) },
  { name: '1x1 stride 2 projection, 9x9, C5 -> 12', x: [2, 9, 9, 5], w: [12, 5, 1, 1], a: attrs(2, 0) },
  { name: '1x1 stride 1, C32 -> 16', x: [3, 4, 4, 32], w: [16, 32, 1, 1], a: attrs(1, 0) },
  { name: '3x1 kernel, stride (2,1), pad (1,0), 6x10', x: [1, 6, 10, 4], w: [6, 4, 3, 1], a: attrs([2, 1], [1, 0]) },
  { name: '3x3 stride 2 without padding, even size 8x8', x: [2, 8, 8, 32], w: [64, 32, 3, 3], a: attrs(2, 0) },
  // 16 -> 16 channels run in oneDNN's nChw16c description of the NHWC arrays (native/conv.cc):
  // odd sizes, strides and kernels other than 3x3 there too.
  { name: '5x5 pad 2, C16, batch 3, 9x7', x: [3, 9, 7, 16], w: [16, 16, 5, 5], a: attrs(1, 2) },
  { name: '1x1 stride 2, C16, 7x7', x: [2, 7, 7, 16], w: [16, 16, 1, 1], a: attrs(2, 0) },
  { name: '3x3 stride (2,1) pad (0,1), C16, 7x6', x: [1, 7, 6, 16], w: [16, 16, 3, 3], a: attrs([2, 1], [0, 1]) },
  // Float32 3x3 stride-1 pad-1 16 -> 16 (forward and backward-data) runs native/conv16.cc on AVX-512, a row in
  // blocks of at most 16 pixels: ResNet-20's 32 wide (16 + 16), a row of one pixel, blocks on one edge each (9 + 8),
  // and a middle block on neither (11 + 11 + 11), each with rows beyond the top and bottom.
  { name: '3x3 C16, 6x32 (two blocks of 16)', x: [1, 6, 32, 16], w: [16, 16, 3, 3], a: attrs(1, 1) },
  { name: '3x3 C16, 3x1 (one pixel a row)', x: [2, 3, 1, 16], w: [16, 16, 3, 3], a: attrs(1, 1) },
  { name: '3x3 C16, 1x17 (blocks of 9 and 8)', x: [2, 1, 17, 16], w: [16, 16, 3, 3], a: attrs(1, 1) },
  { name: '3x3 C16, 4x33 (blocks of 11, one in the middle)', x: [1, 4, 33, 16], w: [16, 16, 3, 3], a: attrs(1, 1) },
  // ... and so do the stems from 3 and 1 channels to 16.
  { name: '3x3 C3 -> 16 stem, 6x32', x: [2, 6, 32, 3], w: [16, 3, 3, 3], a: attrs(1, 1) },
  { name: '3x3 C1 -> 16 stem, 7x28', x: [2, 7, 28, 1], w: [16, 1, 3, 3], a: attrs(1, 1) },
  { name: '3x3 C3 -> 16, 5x19 (blocks of 10 and 9)', x: [1, 5, 19, 3], w: [16, 3, 3, 3], a: attrs(1, 1) },
  // A 1x1 convolution of one-pixel images (a fully connected layer): prepared, from 4 images and large
  // weights oneDNN's inner product (native/conv.cc, innerProductFits), below that its convolution.
  { name: '1x1 of one-pixel images, C512 -> 160, batch 4', x: [4, 1, 1, 512], w: [160, 512, 1, 1], a: attrs(1, 0) },
  { name: '1x1 of one-pixel images, C512 -> 160, batch 2', x: [2, 1, 1, 512], w: [160, 512, 1, 1], a: attrs(1, 0) },
];

for (const c of convCases) {
  test(`conv2d forward, backward-data, backward-weights: ${c.name}`, () => {
    const nb = native();
    const x = randn(numel(c.x));
    const w = randn(numel(c.w), 1 / Math.sqrt(c.w[1] * c.w[2] * c.w[3]));
    const yShape = conv2dOutShape(c.x, c.w, c.a);
    const dy = randn(numel(yShape));

    assertClose(nb.conv2d(x, c.x, w, c.w, null, c.a), ref.conv2d(x, c.x, w, c.w, null, c.a), 'y');
    const got = nb.conv2dBackward(x, c.x, dy, w, c.w, c.a, true, true, true);
    const want = ref.conv2dBackward(x, c.x, dy, w, c.w, c.a, true, true, true);
    assert.ok(got.dx && want.dx && got.dw && want.dw, 'dx and dw are returned when asked for');
    assertClose(got.dx, want.dx, 'dx');
    assertClose(got.dw, want.dw, 'dw');
    assert.ok(got.db && want.db, 'db is returned when withBias');
    assertClose(got.db, want.db, 'db');
    // Each gradient alone, and no bias gradient without a bias.
    const dxOnly = nb.conv2dBackward(x, c.x, dy, w, c.w, c.a, true, true, false);
    assert.deepEqual([dxOnly.dw, dxOnly.db], [null, null]);
    assertClose(dxOnly.dx!, want.dx, 'dx alone');
    const noBias = nb.conv2dBackward(x, c.x, dy, w, c.w, c.a, false, false, true);
    assert.deepEqual([noBias.dx, noBias.db], [null, null]);
    assertClose(noBias.dw!, want.dw, 'dw without bias');
  });
}

test('conv2d with bias and the fused residual add and ReLU (inference)', () => {
  const nb = native();
  for (const c of [convCases[0]!, convCases[1]!, convCases[4]!]) {
    const x = randn(numel(c.x));
    const w = randn(numel(c.w), 0.3);
    const bias = randn(c.w[0]);
    const sum = randn(numel(conv2dOutShape(c.x, c.w, c.a)));
    const cases: { sum?: Float32Array; relu?: boolean }[] = [{}, { relu: true }, { sum }, { sum, relu: true }];
    for (const post of cases) {
      const label = `${c.name}, bias, post ${JSON.stringify({ sum: post.sum !== undefined, relu: post.relu ?? false })}`;
      assertClose(nb.conv2d(x, c.x, w, c.w, bias, c.a, post), ref.conv2d(x, c.x, w, c.w, bias, c.a, post), label);
    }
    assertClose(nb.conv2d(x, c.x, w, c.w, null, c.a, { relu: true }), ref.conv2d(x, c.x, w, c.w, null, c.a, { relu: true }),
      `${c.name}, no bias, relu`);
  }
});

test('conv2d uses the weights of each call (cached plans, fresh weights)', () => {
  const nb = native();
  const c = convCases[0]!;
  const x = randn(numel(c.x));
  for (let i = 0; i < 3; i++) {
    const w = randn(numel(c.w), 0.2);
    assertClose(nb.conv2d(x, c.x, w, c.w, null, c.a), ref.conv2d(x, c.x, w, c.w, null, c.a), `call ${i}`);
  }
});

/** OIHW weights with output channel o taken times scale[o], written out here (what prepareConv2d's scale means). */
function scaledWeights(w: Float32Array, wShape: Shape4, scale: Float32Array): Float32Array {
  const per = numel(wShape) / wShape[0];
  return w.map((v, i) => v * scale[Math.floor(i / per)]!);
}

test('prepared conv2d: every post-op, several input shapes on one preparation, inputs left untouched', () => {
  const nb = native();
  for (const c of convCases) {
    const w = randn(numel(c.w), 0.3);
    const wCopy = w.slice();
    for (const [bias, scale] of [[null, null], [randn(c.w[0]), null], [randn(c.w[0]), randn(c.w[0])]] as const) {
      // With a scale (a batch norm folded in): as the plain convolution of the scaled weights.
      const run = nb.prepareConv2d(w, c.w, bias, c.a, scale);
      const want = ref.prepareConv2d(scale ? scaledWeights(w, c.w, scale) : w, c.w, bias, c.a);
      assert.deepEqual(w, wCopy, 'the weights are left untouched');
      // The batch changes between calls (a last, smaller chunk), and the first shape comes back.
      for (const n of [c.x[0], c.x[0] + 1, c.x[0]]) {
        const xs: Shape4 = [n, c.x[1], c.x[2], c.x[3]];
        const x = randn(numel(xs));
        const sum = randn(numel(conv2dOutShape(xs, c.w, c.a)));
        const sumCopy = sum.slice();
        for (const post of [undefined, { relu: true }, { sum }, { sum, relu: true }]) {
          const label = `${c.name}, batch ${n}, bias ${bias !== null}, scale ${scale !== null}, post ${JSON.stringify({ sum: post?.sum !== undefined, relu: post?.relu ?? false })}`;
          assertClose(run(x, xs, post), want(x, xs, post), label);
        }
        assert.deepEqual(sum, sumCopy, 'the residual is left untouched');
      }
    }
  }
});

test('conv2d and prepared conv2d in place: the output written over post.sum, as the copy would be', () => {
  const nb = native();
  // The 64 -> 64 3x3 case runs as Winograd in the prepared path (its own residual route).
  const winograd: ConvCase = { name: '3x3 C64 (Winograd when prepared)', x: [2, 6, 6, 64], w: [64, 64, 3, 3], a: attrs(1, 1) };
  for (const be of [nb, ref]) {
    for (const c of [convCases[0]!, convCases[4]!, convCases[5]!, convCases[9]!, winograd]) {
      const x = randn(numel(c.x));
      const w = randn(numel(c.w), 0.3);
      const bias = randn(c.w[0]);
      const residual = randn(numel(conv2dOutShape(c.x, c.w, c.a)));
      for (const relu of [false, true]) {
        const label = `${be === nb ? 'native' : 'reference'}, ${c.name}, relu ${relu}`;
        const want = be.conv2d(x, c.x, w, c.w, bias, c.a, { sum: residual, relu });
        const sum = residual.slice();
        const got = be.conv2d(x, c.x, w, c.w, bias, c.a, { sum, relu, inPlace: true });
        assert.equal(got, sum, `${label}: conv2d returns post.sum`);
        assertClose(got, want, `${label}: conv2d`);
        const prepared = residual.slice();
        const run = be.prepareConv2d(w, c.w, bias, c.a);
        assert.equal(run(x, c.x, { sum: prepared, relu, inPlace: true }), prepared, `${label}: prepared returns post.sum`);
        assertClose(prepared, want, `${label}: prepared`);
        const scale = randn(c.w[0], 0.5);
        const scaled = residual.slice();
        be.prepareConv2d(w, c.w, bias, c.a, scale)(x, c.x, { sum: scaled, relu, inPlace: true });
        assertClose(scaled, be.conv2d(x, c.x, scaledWeights(w, c.w, scale), c.w, bias, c.a, { sum: residual, relu }),
          `${label}: prepared with a scale`);
      }
    }
    const c = convCases[5]!;
    const x = randn(numel(c.x));
    const w = randn(numel(c.w));
    const name = be === nb ? /native conv2d: post\.inPlace needs post\.sum/ : /post\.inPlace needs post\.sum/;
    assert.throws(() => be.conv2d(x, c.x, w, c.w, null, c.a, { inPlace: true }), name);
    // 1x1 C32 -> C16 over the same memory: x's first half is the output's whole.
    assert.throws(() => be.prepareConv2d(w, c.w, null, c.a)(x, c.x, { sum: x.subarray(0, x.length / 2), inPlace: true }),
      /post\.inPlace: x shares memory with post\.sum/);
  }
});

// nChw16c index of channel ch of pixel p (of hw) in image i of an [N, H, W, C] tensor.
const blockedIndex = (i: number, p: number, ch: number, hw: number, c: number): number =>
  ((i * (c / 16) + Math.floor(ch / 16)) * hw + p) * 16 + (ch % 16);

test('relayout: NHWC to nChw16c and back, as the reference', () => {
  const nb = native();
  // The last is above the size copied on one thread: its planes are split across threads.
  for (const s of [[2, 3, 5, 32], [1, 1, 1, 16], [3, 4, 4, 48], [3, 40, 40, 64]] satisfies Shape4[]) {
    const x = randn(numel(s));
    const blocked = ref.relayout(x, s, 'nchw16c');
    const [n, h, w, c] = s;
    for (const [i, p, ch] of [[0, 0, 0], [n - 1, h * w - 1, c - 1], [n - 1, 1 % (h * w), 17 % c]] as const) {
      assert.equal(blocked[blockedIndex(i, p, ch, h * w, c)], x[(i * h * w + p) * c + ch], `reference at ${i},${p},${ch}`);
    }
    assert.deepEqual(nb.relayout(x, s, 'nchw16c'), blocked, `native to nChw16c ${s.join('x')}`);
    assert.deepEqual(nb.relayout(blocked, s, 'nhwc'), x, `native back ${s.join('x')}`);
    assert.deepEqual(ref.relayout(blocked, s, 'nhwc'), x, `reference back ${s.join('x')}`);
  }
  assert.throws(() => nb.relayout(new Float32Array(8), [1, 1, 1, 8], 'nchw16c'),
    /native relayout: layout 'nchw16c' needs channels in multiples of 16, x has 8/);
  assert.throws(() => nb.relayout(new Float32Array(16), [1, 1, 1, 16], 'nchw8c' as never), /native relayout: layout must be 'nhwc' or 'nchw16c'/);
  assert.throws(() => nb.relayout(new Float32Array(15), [1, 1, 1, 16], 'nhwc'), /native relayout: x has 15 elements, expected 16/);
  assert.throws(() => ref.relayout(new Float32Array(8), [1, 1, 1, 8], 'nchw16c'), /needs channels in multiples of 16, x has 8/);
});

// The layouts a prepared convolution takes: x, post.sum and the output in nChw16c give the
// NHWC results relaid out, through each kernel route (1x1, strided 1x1, direct 3x3,
// Winograd 64 -> 64, the 16-channel kernel), with every post-op and in place.
test('prepared conv2d on nChw16c activations, and the layout each asks for', () => {
  const nb = native();
  const avx512 = nativeCpu().isa.startsWith('avx512');
  const cases: (ConvCase & { fastest: 'nhwc' | 'nchw16c' })[] = [
    { name: '1x1 32 -> 64', x: [2, 5, 5, 32], w: [64, 32, 1, 1], a: attrs(1, 0), fastest: 'nchw16c' },
    { name: '1x1 32 -> 48 stride 2', x: [3, 5, 5, 32], w: [48, 32, 1, 1], a: attrs(2, 0), fastest: 'nchw16c' },
    { name: '3x3 32 -> 32', x: [2, 6, 6, 32], w: [32, 32, 3, 3], a: attrs(1, 1), fastest: 'nhwc' },
    { name: '3x3 64 -> 64 (Winograd)', x: [2, 6, 6, 64], w: [64, 64, 3, 3], a: attrs(1, 1), fastest: 'nchw16c' },
    { name: '3x3 16 -> 16', x: [2, 6, 6, 16], w: [16, 16, 3, 3], a: attrs(1, 1), fastest: 'nhwc' },
  ];
  for (const c of cases) {
    const w = randn(numel(c.w), 0.3);
    const bias = randn(c.w[0]);
    const ys = conv2dOutShape(c.x, c.w, c.a);
    const x = randn(numel(c.x));
    const residual = randn(numel(ys));
    const run = nb.prepareConv2d(w, c.w, bias, c.a);
    assert.equal(run.layout, avx512 ? c.fastest : 'nhwc', `${c.name}: the layout asked for`);
    const xB = ref.relayout(x, c.x, 'nchw16c');
    for (const post of [undefined, { relu: true }, { sum: residual }, { sum: residual, relu: true }]) {
      const label = `${c.name}, post ${JSON.stringify({ sum: post?.sum !== undefined, relu: post?.relu ?? false })}`;
      const want = ref.relayout(ref.conv2d(x, c.x, w, c.w, bias, c.a, post), ys, 'nchw16c');
      const sumB = post?.sum && ref.relayout(post.sum, ys, 'nchw16c');
      const postB = post && { ...post, sum: sumB };
      assertClose(run(xB, c.x, postB, 'nchw16c'), want, `native, ${label}`);
      assertClose(ref.prepareConv2d(w, c.w, bias, c.a)(xB, c.x, postB, 'nchw16c'), want, `reference, ${label}`);
      if (sumB) {
        const target = sumB.slice();
        assert.equal(run(xB, c.x, { ...postB, sum: target, inPlace: true }, 'nchw16c'), target, `native, ${label}, in place`);
        assertClose(target, want, `native, ${label}, in place`);
      }
    }
  }
  const odd = nb.prepareConv2d(randn(8 * 8), [8, 8, 1, 1], null, attrs(1, 0));
  assert.equal(odd.layout, 'nhwc');
  assert.throws(() => odd(new Float32Array(8), [1, 1, 1, 8], undefined, 'nchw16c'),
    /native preparedConv2d: layout 'nchw16c' needs channels in multiples of 16, x has 8/);
  assert.throws(() => odd(new Float32Array(8), [1, 1, 1, 8], undefined, 'nhwc8' as never),
    /native preparedConv2d: layout must be 'nhwc' or 'nchw16c'/);
});

test('prepared conv2d checks its arguments', () => {
  const nb = native();
  const c = convCases[0]!;
  assert.throws(() => nb.prepareConv2d(new Float32Array(5), c.w, null, c.a), /native prepareConv2d: w has 5 elements, expected 2304/);
  assert.throws(() => nb.prepareConv2d(randn(numel(c.w)), c.w, null, c.a, new Float32Array(3)),
    /native prepareConv2d: scale has 3 elements, expected 16/);
  const run = nb.prepareConv2d(randn(numel(c.w)), c.w, null, c.a);
  assert.throws(() => run(new Float32Array(numel(c.x)), [2, 8, 8, 8], undefined),
    /native preparedConv2d: weights take 16 input channels but x has 8/);
  assert.throws(() => run(new Float32Array(numel(c.x)), c.x, { sum: new Float32Array(3) }),
    /native preparedConv2d: sum has 3 elements, expected 2048/);
});

const bnShapes: Shape4[] = [[2, 5, 5, 3], [1, 4, 4, 17], [4, 3, 3, 32], [2, 8, 8, 16], [8, 2, 2, 64]];

for (const s of bnShapes) {
  for (const relu of [false, true]) {
    test(`batch norm training, inference and backward: x [${s.join(',')}]${relu ? ' with fused ReLU' : ''}`, () => {
      const nb = native();
      const c = s[3];
      const x = randn(numel(s), 2);
      for (let i = 0; i < x.length; i++) x[i] += 0.5 * (i % c);
      const gamma = uniform(c, 0.5, 1.5);
      const beta = randn(c, 0.5);
      const eps = 1e-5;

      const got = nb.batchNormTraining(x, s, gamma, beta, eps, relu);
      const want = ref.batchNormTraining(x, s, gamma, beta, eps, relu);
      assertClose(got.mean, want.mean, 'mean');
      assertClose(got.variance, want.variance, 'variance');
      assertClose(got.y, want.y, 'y');

      const runningMean = randn(c, 0.5);
      const runningVar = uniform(c, 0.5, 2);
      assertClose(nb.batchNormInference(x, s, gamma, beta, runningMean, runningVar, eps, relu),
        ref.batchNormInference(x, s, gamma, beta, runningMean, runningVar, eps, relu), 'inference y');

      const dy = randn(numel(s));
      const y = relu ? want.y : null;
      const g = nb.batchNormBackward(dy, x, s, gamma, want.mean, want.variance, eps, y);
      const r = ref.batchNormBackward(dy, x, s, gamma, want.mean, want.variance, eps, y);
      assertClose(g.dx, r.dx, 'dx', CHAINED);
      assertClose(g.dgamma, r.dgamma, 'dgamma', CHAINED);
      assertClose(g.dbeta, r.dbeta, 'dbeta');
    });
  }
}

for (const s of bnShapes) {
  for (const relu of [false, true]) {
    test(`eval-mode batch norm backward and the running statistics update: x [${s.join(',')}]${relu ? ' with fused ReLU' : ''}`, () => {
      const nb = native();
      const c = s[3];
      const x = randn(numel(s), 2);
      const gamma = uniform(c, 0.5, 1.5);
      const beta = randn(c, 0.5);
      const mean = randn(c, 0.5);
      const variance = uniform(c, 0.5, 2);
      const y = relu ? ref.batchNormInference(x, s, gamma, beta, mean, variance, 1e-5, true) : null;
      const dy = randn(numel(s));
      const g = nb.batchNormInferenceBackward(dy, x, s, gamma, mean, variance, 1e-5, y);
      const r = ref.batchNormInferenceBackward(dy, x, s, gamma, mean, variance, 1e-5, y);
      assertClose(g.dx, r.dx, 'dx');
      assertClose(g.dgamma, r.dgamma, 'dgamma');
      assertClose(g.dbeta, r.dbeta, 'dbeta');

      const count = numel(s) / c;
      const [gotMean, gotVar] = [randn(c), uniform(c, 0.5, 2)];
      const [wantMean, wantVar] = [gotMean.slice(), gotVar.slice()];
      nb.batchNormRunningStatsInPlace(gotMean, gotVar, mean, variance, 0.1, count);
      ref.batchNormRunningStatsInPlace(wantMean, wantVar, mean, variance, 0.1, count);
      assertClose(gotMean, wantMean, 'running mean', SAME_ORDER);
      assertClose(gotVar, wantVar, 'running variance', SAME_ORDER);
    });
  }
}

test('the addon exports exactly the kernels of the KERNELS table and the runtime controls', () => {
  const exported = Object.entries(loadNativeBinding()).filter(([, v]) => typeof v === 'function').map(([k]) => k).sort();
  assert.deepEqual(exported, [...KERNEL_NAMES, ...CONTROLS].sort());
  const nb = native();
  for (const k of KERNEL_NAMES) assert.equal(typeof nb[k], 'function', `native backend kernel ${k}`);
  for (const k of KERNEL_NAMES) assert.equal(typeof ref[k], 'function', `reference backend kernel ${k}`);
});

test('batch statistics stay accurate when the mean dwarfs the spread', () => {
  const nb = native();
  const s: Shape4 = [8, 16, 16, 4];
  const x = randn(numel(s), 1e-2);
  for (let i = 0; i < x.length; i++) x[i] += 1000 * ((i % 4) + 1);
  const gamma = new Float32Array(4).fill(1);
  const beta = new Float32Array(4);
  const got = nb.batchNormTraining(x, s, gamma, beta, 1e-5, false);
  const want = ref.batchNormTraining(x, s, gamma, beta, 1e-5, false);
  // The means lie between 1000 and 4000, where a float32 ulp is 6e-8 relative: within
  // 2 ulps. The variances (1e-4) to 4 digits, which E[x^2] - E[x]^2 in float32 misses.
  assertClose(got.mean, want.mean, 'mean', { atol: 0, rtol: 1.2e-7 });
  assertClose(got.variance, want.variance, 'variance', { atol: 0, rtol: 1e-4 });
  assertClose(got.y, want.y, 'y');
});

test('batch norm backward leaves its inputs untouched', () => {
  const nb = native();
  const s: Shape4 = [2, 3, 3, 5];
  const x = randn(numel(s));
  const gamma = uniform(5, 0.5, 1.5);
  const { y, mean, variance } = ref.batchNormTraining(x, s, gamma, randn(5), 1e-5, true);
  const dy = randn(numel(s));
  const dyCopy = dy.slice();
  const yCopy = y.slice();
  nb.batchNormBackward(dy, x, s, gamma, mean, variance, 1e-5, y);
  assert.deepEqual(dy, dyCopy);
  assert.deepEqual(y, yCopy);
});

for (const n of [1000, 100_003]) {
  test(`elementwise kernels and sum, ${n} elements`, () => {
    const nb = native();
    const a = randn(n);
    const b = randn(n);
    assert.deepEqual(nb.relu(a), ref.relu(a));
    assert.deepEqual(nb.reluBackward(b, a), ref.reluBackward(b, a));
    assert.deepEqual(nb.add(a, b), ref.add(a, b));
    assert.deepEqual(nb.addRelu(a, b), ref.addRelu(a, b));
    assert.deepEqual(nb.scale(a, 0.37), ref.scale(a, 0.37));
    assert.deepEqual(nb.fill(n, 0.37 / n), ref.fill(n, 0.37 / n));
    const acc1 = a.slice();
    const acc2 = a.slice();
    nb.addInPlace(acc1, b);
    ref.addInPlace(acc2, b);
    assert.deepEqual(acc1, acc2);
    const want = ref.sum(a);
    assert.ok(Math.abs(nb.sum(a) - want) <= 1e-9 * n, `sum ${nb.sum(a)} vs ${want}`);
  });
}

// bfloat16 storage: each kernel is its float32 kernel on the widened inputs, rounded once
// (src/backend/bf16.ts, the reference's rows). The element-wise ones do the same float32
// operation and round to nearest even, so they agree bit for bit; batch norm sums in
// another order than the reference, so a result lying near the midpoint of two
// bfloat16 values may round the other way: one unit in the last place (at most 2^-7
// relative: 8 significant bits) beyond the float32 tolerance, on a few elements only.
const ULP_BF16: Tolerance = { atol: CHAINED.atol, rtol: CHAINED.rtol + 2 ** -7 };

function widen(a: Uint16Array): Float32Array {
  return ref.fromBf16(a);
}

/** Native bf16 values against the reference's: within ULP_BF16, and bit-equal on all but `maxOff` of them. */
function assertBf16Close(actual: Uint16Array, expected: Uint16Array, what: string, maxOff = 0.01): void {
  assertClose(widen(actual), widen(expected), what, ULP_BF16);
  let off = 0;
  for (let i = 0; i < expected.length; i++) if (actual[i] !== expected[i]) off++;
  assert.ok(off <= maxOff * expected.length, `${what}: ${off} of ${expected.length} values differ from the reference's rounding`);
}

for (const n of [1000, 100_003]) {
  test(`bf16 storage: conversions and element-wise kernels equal the reference bit for bit, ${n} elements`, () => {
    const nb = native();
    const a = randn(n);
    const b = randn(n);
    const a16 = ref.toBf16(a);
    const b16 = ref.toBf16(b);
    assert.deepEqual(nb.toBf16(a), a16);
    assert.deepEqual(nb.fromBf16(a16), ref.fromBf16(a16));
    // Every bfloat16 value is a float32 exactly: the round trip gives the same bits back.
    assert.deepEqual(nb.toBf16(nb.fromBf16(a16)), a16);
    assert.deepEqual(nb.addBf16(a16, b16), ref.addBf16(a16, b16));
    assert.deepEqual(nb.addBf16(a16, b), ref.addBf16(a16, b), 'bf16 + float32');
    assert.deepEqual(nb.addBf16(a, b16), ref.addBf16(a, b16), 'float32 + bf16');
    assert.deepEqual(nb.addReluBf16(a16, b16), ref.addReluBf16(a16, b16));
    assert.deepEqual(nb.addReluBf16(b, a16), ref.addReluBf16(b, a16), 'float32 + bf16, ReLU');
    assert.deepEqual(nb.reluBackwardBf16(b16, a16), ref.reluBackwardBf16(b16, a16));
    const acc1 = a16.slice();
    const acc2 = a16.slice();
    nb.addInPlaceBf16(acc1, b16);
    ref.addInPlaceBf16(acc2, b16);
    assert.deepEqual(acc1, acc2);
  });
}

test('bf16 storage: rounding to nearest even, NaN, infinities and ReLU\'s mask at the edges', () => {
  const nb = native();
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 (ties to even: 1); 1 + 3 * 2^-8 halfway to 1 + 2^-6 (even: up).
  const x = Float32Array.from([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -0, Number.NaN, Infinity, -Infinity,
    3.3895313892515355e38]);
  const want = [0x3f80, 0x3f82, 0x3f81, 0x8000, null, 0x7f80, 0xff80, 0x7f7f];
  const got = nb.toBf16(x);
  want.forEach((w, i) => {
    if (w === null) assert.ok(Number.isNaN(widen(got)[i]!), `NaN stays NaN, got bits ${got[i]!.toString(16)}`);
    else assert.equal(got[i], w, `value ${x[i]}: bits ${got[i]!.toString(16)}, expected ${w.toString(16)}`);
  });
  assert.deepEqual(got.map((v, i) => (Number.isNaN(x[i]!) ? 0 : v)), ref.toBf16(x).map((v, i) => (Number.isNaN(x[i]!) ? 0 : v)));
  const y = nb.toBf16(Float32Array.from([0, -0, Number.NaN, 1e-30, -1e-30, Infinity, -Infinity, 2]));
  const dy = nb.toBf16(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
  assert.deepEqual(widen(nb.reluBackwardBf16(dy, y)), Float32Array.from([0, 0, 0, 4, 0, 6, 0, 8]));
  assert.deepEqual(nb.reluBackwardBf16(dy, y), ref.reluBackwardBf16(dy, y));
});

// Channel counts below 64 that divide it run folded in bfloat16 (several rows per vector
// loop) with the rows left over one at a time: odd row counts exercise both parts.
for (const s of [[2, 5, 7, 16], [3, 9, 5, 32], [2, 3, 5, 64], [1, 7, 3, 5], [4, 9, 9, 8], [2, 11, 3, 96]] as Shape4[]) {
  test(`batch norm training forward and backward on bf16 storage = the reference, x [${s.join(',')}]`, () => {
    const nb = native();
    const c = s[3];
    const x = ref.toBf16(uniform(numel(s), -2, 3));
    const dy = ref.toBf16(randn(numel(s)));
    const gamma = uniform(c, 0.5, 1.5);
    const beta = randn(c);
    for (const relu of [false, true]) {
      const got = nb.batchNormTrainingBf16(x, s, gamma, beta, 1e-5, relu);
      const want = ref.batchNormTrainingBf16(x, s, gamma, beta, 1e-5, relu);
      assertBf16Close(got.y, want.y, `y (relu ${relu})`);
      assertClose(got.mean, want.mean, 'mean', CHAINED);
      assertClose(got.variance, want.variance, 'variance', CHAINED);
      const g = nb.batchNormBackwardBf16(dy, x, s, gamma, want.mean, want.variance, 1e-5, relu ? want.y : null);
      const gw = ref.batchNormBackwardBf16(dy, x, s, gamma, want.mean, want.variance, 1e-5, relu ? want.y : null);
      assertBf16Close(g.dx, gw.dx, `dx (relu ${relu})`);
      assertClose(g.dgamma, gw.dgamma, 'dgamma', CHAINED);
      assertClose(g.dbeta, gw.dbeta, 'dbeta', CHAINED);
      // The float32 kernels on the same (widened) values, which do not fold their rows.
      const y32 = nb.batchNormTraining(widen(x), s, gamma, beta, 1e-5, relu);
      assertClose(y32.y, ref.batchNormTraining(widen(x), s, gamma, beta, 1e-5, relu).y, `float32 y (relu ${relu})`, CHAINED);
      const g32 = nb.batchNormBackward(widen(dy), widen(x), s, gamma, want.mean, want.variance, 1e-5, relu ? widen(want.y) : null);
      const gw32 = ref.batchNormBackward(widen(dy), widen(x), s, gamma, want.mean, want.variance, 1e-5, relu ? widen(want.y) : null);
      assertClose(g32.dx, gw32.dx, `float32 dx (relu ${relu})`, CHAINED);
      assertClose(g32.dgamma, gw32.dgamma, `float32 dgamma (relu ${relu})`, CHAINED);
    }
  });
}

test('relu of zeros, negative zero and NaN follows the reference', () => {
  const nb = native();
  const x = Float32Array.from([0, -0, Number.NaN, -1, 1, Infinity, -Infinity]);
  assert.deepEqual(nb.relu(x), ref.relu(x));
  assert.deepEqual(nb.addRelu(x, x), ref.addRelu(x, x));
});

const subsampleCases: { x: Shape4; stride: number; outC: number; padFront: number }[] = [
  { x: [2, 7, 7, 5], stride: 2, outC: 12, padFront: 3 },
  { x: [1, 8, 8, 16], stride: 2, outC: 32, padFront: 8 },
  { x: [2, 5, 3, 4], stride: 1, outC: 4, padFront: 0 },
  { x: [1, 9, 9, 3], stride: 3, outC: 8, padFront: 5 },
];

for (const c of subsampleCases) {
  test(`option-A shortcut (subsample + zero channels): x [${c.x.join(',')}], stride ${c.stride}, ${c.outC} channels`, () => {
    const nb = native();
    const x = randn(numel(c.x));
    assert.deepEqual(nb.padChannelsSubsample(x, c.x, c.stride, c.outC, c.padFront),
      ref.padChannelsSubsample(x, c.x, c.stride, c.outC, c.padFront));
    const dy = randn(c.x[0] * subsampleSize(c.x[1], c.stride) * subsampleSize(c.x[2], c.stride) * c.outC);
    assert.deepEqual(nb.padChannelsSubsampleBackward(dy, c.x, c.stride, c.outC, c.padFront),
      ref.padChannelsSubsampleBackward(dy, c.x, c.stride, c.outC, c.padFront));
  });
}

function pool(k: number, s: number, p: number): Pool2dAttrs {
  return { kernelH: k, kernelW: k, strideH: s, strideW: s, padH: p, padW: p };
}

const poolCases: { x: Shape4; a: Pool2dAttrs; name: string }[] = [
  { name: '3x3 stride 2 pad 1 (the ImageNet stem pool), 9x9, C5', x: [2, 9, 9, 5], a: pool(3, 2, 1) },
  { name: '2x2 stride 2, 8x8, C17', x: [1, 8, 8, 17], a: pool(2, 2, 0) },
  { name: '3x3 stride 1 pad 1, 5x5, C3', x: [1, 5, 5, 3], a: pool(3, 1, 1) },
  { name: '3x2 stride (2,1) pad (1,1), 7x6, C16', x: [3, 7, 6, 16],
    a: { kernelH: 3, kernelW: 2, strideH: 2, strideW: 1, padH: 1, padW: 1 } },
];

for (const c of poolCases) {
  test(`max and average pooling forward and backward: ${c.name}`, () => {
    const nb = native();
    const x = randn(numel(c.x));
    const dy = randn(numel(pool2dOutShape(c.x, c.a)));
    const got = nb.maxPool2d(x, c.x, c.a, true);
    const want = ref.maxPool2d(x, c.x, c.a, true);
    assert.deepEqual(got.y, want.y);
    assert.deepEqual(got.argmax, want.argmax);
    assertClose(nb.maxPool2dBackward(dy, got.argmax!, c.x, c.a), ref.maxPool2dBackward(dy, want.argmax!, c.x, c.a), 'max dx');
    // Inference: the same maxima, no indices.
    const bare = nb.maxPool2d(x, c.x, c.a, false);
    assert.deepEqual(bare.y, want.y);
    assert.equal(bare.argmax, null);
    assert.equal(ref.maxPool2d(x, c.x, c.a, false).argmax, null);
    assertClose(nb.avgPool2d(x, c.x, c.a), ref.avgPool2d(x, c.x, c.a), 'avg y');
    assertClose(nb.avgPool2dBackward(dy, c.x, c.a), ref.avgPool2dBackward(dy, c.x, c.a), 'avg dx');
  });
}

test('max pooling keeps the first of equal maxima, and a window of -inf points inside the input', () => {
  const nb = native();
  const s: Shape4 = [1, 4, 4, 2];
  const x = new Float32Array(numel(s)).fill(-Infinity);
  for (let i = 0; i < 8; i++) x[i * 2] = 1;
  const a = pool(3, 2, 1);
  const got = nb.maxPool2d(x, s, a, true);
  const want = ref.maxPool2d(x, s, a, true);
  assert.deepEqual(got.y, want.y);
  assert.deepEqual(got.argmax, want.argmax);
  assert.deepEqual(nb.maxPool2d(x, s, a, false).y, want.y);
  // A NaN in a window is its maximum, with or without the indices (PyTorch).
  x[5] = NaN;
  const withNaN = ref.maxPool2d(x, s, a, true);
  assert.ok(withNaN.y.some(Number.isNaN));
  assert.deepEqual(nb.maxPool2d(x, s, a, true).y, withNaN.y);
  assert.deepEqual(nb.maxPool2d(x, s, a, false).y, withNaN.y);
  // Channels in 16s without indices keep each vector of maxima in a register (native/pooling.cc): the same
  // rule, with NaNs first, later and alone in a window, -inf windows and equal maxima.
  const wide: Shape4 = [2, 7, 6, 32];
  const xw = randn(numel(wide));
  for (let i = 0; i < xw.length; i += 7) xw[i] = -Infinity;
  for (let i = 3; i < xw.length; i += 11) xw[i] = 0.5;
  for (const i of [0, 40, 33 * 32 + 5, 500, 1000, 1001, 2000]) xw[i] = NaN;
  for (const aw of [a, pool(2, 2, 0), pool(3, 1, 1)]) {
    const wantWide = ref.maxPool2d(xw, wide, aw, true);
    assert.ok(wantWide.y.some(Number.isNaN));
    assert.deepEqual(nb.maxPool2d(xw, wide, aw, false).y, wantWide.y);
    assert.deepEqual(nb.maxPool2d(xw, wide, aw, true).y, wantWide.y);
  }
});

for (const s of [[2, 7, 7, 17], [1, 1, 1, 3], [4, 8, 8, 64]] satisfies Shape4[]) {
  test(`global average pooling forward and backward: x [${s.join(',')}]`, () => {
    const nb = native();
    const x = randn(numel(s));
    const dy = randn(s[0] * s[3]);
    assertClose(nb.globalAvgPool(x, s), ref.globalAvgPool(x, s), 'y');
    assertClose(nb.globalAvgPoolBackward(dy, s), ref.globalAvgPoolBackward(dy, s), 'dx');
  });
}

// Compiled inference keeps activations in nChw16c where the convolutions run on it: the max pool
// writes it, global average pooling reads it.
test('max pooling into nChw16c and global average pooling from it, as NHWC relaid out', () => {
  const nb = native();
  for (const be of [nb, ref]) {
    const who = be === nb ? 'native' : 'reference';
    for (const [s, a] of [[[2, 9, 9, 32], pool(3, 2, 1)], [[1, 6, 5, 16], pool(2, 2, 0)], [[3, 7, 7, 48], pool(3, 1, 1)]] as const) {
      const x = randn(numel(s));
      x[7] = NaN;
      const want = ref.maxPool2d(x, s, a, false).y;
      const got = be.maxPool2d(x, s, a, false, 'nchw16c');
      assert.equal(got.argmax, null);
      assert.deepEqual(got.y, ref.relayout(want, pool2dOutShape(s, a), 'nchw16c'), `${who}: max pool into nChw16c, x [${s.join(',')}]`);
      assert.deepEqual(be.maxPool2d(x, s, a, false, 'nhwc').y, want, `${who}: max pool into NHWC, x [${s.join(',')}]`);
      const finite = randn(numel(s));
      assertClose(be.globalAvgPool(ref.relayout(finite, s, 'nchw16c'), s, 'nchw16c'), ref.globalAvgPool(finite, s),
        `${who}: global average pool from nChw16c, x [${s.join(',')}]`);
    }
  }
  const s: Shape4 = [1, 4, 4, 8];
  assert.throws(() => nb.maxPool2d(randn(numel(s)), s, pool(2, 2, 0), false, 'nchw16c'),
    /native maxPool2d: layout 'nchw16c' needs channels in multiples of 16, y has 8/);
  assert.throws(() => nb.maxPool2d(randn(4 * 4 * 16), [1, 4, 4, 16], pool(2, 2, 0), true, 'nchw16c'),
    /native maxPool2d: layout 'nchw16c' holds the maxima alone: argmax must be false/);
  assert.throws(() => ref.maxPool2d(randn(4 * 4 * 16), [1, 4, 4, 16], pool(2, 2, 0), true, 'nchw16c'), /argmax must be false/);
  assert.throws(() => nb.globalAvgPool(randn(numel(s)), s, 'nchw16c'),
    /native globalAvgPool: layout 'nchw16c' needs channels in multiples of 16, x has 8/);
  assert.throws(() => nb.globalAvgPool(randn(16), [1, 1, 1, 16], 'nchw8c' as never), /native globalAvgPool: layout must be 'nhwc' or 'nchw16c'/);
});

for (const [m, n, k] of [[5, 7, 9], [128, 10, 64], [1, 3, 1]] as const) {
  test(`matmul ${m}x${k} by ${k}x${n}, every transpose, with and without bias; sumRows`, () => {
    const nb = native();
    const a = randn(m * k);
    const b = randn(k * n);
    const bias = randn(n);
    for (const transA of [false, true])
      for (const transB of [false, true])
        for (const withBias of [false, true]) {
          const bb = withBias ? bias : null;
          assertClose(nb.matmul(a, b, m, n, k, transA, transB, bb), ref.matmul(a, b, m, n, k, transA, transB, bb),
            `transA ${transA}, transB ${transB}, bias ${withBias}`);
        }
    const x = randn(m * n);
    assertClose(nb.sumRows(x, m, n), ref.sumRows(x, m, n), 'sumRows');
  });
}

// A signal handled while oneDNN 2.6's JIT GEMM runs would land on the heap (its kernels
// point the stack pointer there): a terminal resized during training (Node's SIGWINCH),
// Ctrl-C, a profiler's SIGPROF. A child on two threads multiplies while this process
// sends it SIGWINCH every millisecond; it must finish with the same products it started with.
test('matmul under a stream of signals: no heap corruption, the same products', async () => {
  native();
  const script = `import { loadNativeBackend, setNativeThreads } from ${JSON.stringify(new URL('../src/backend/native.js', import.meta.url).href)};
    const be = loadNativeBackend();
    setNativeThreads(2);
    const m = 32, k = 512, n = 1000;
    const a = new Float32Array(m * k).map((_, i) => Math.sin(i)), b = new Float32Array(k * n).map((_, i) => Math.cos(i));
    const want = be.matmul(a, b, m, n, k, false, true, null).slice();
    let signals = 0;
    process.on('SIGWINCH', () => { signals++; });
    process.stdout.write('ready\\n');
    const t0 = performance.now();
    let calls = 0, same = true;
    while (performance.now() - t0 < 1500) {
      const y = be.matmul(a, b, m, n, k, false, true, null);
      for (let i = 0; i < y.length; i++) same &&= y[i] === want[i];
      if (++calls % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    process.stdout.write(JSON.stringify({ calls, signals, same }));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let timer: NodeJS.Timeout | undefined;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (timer === undefined && out.includes('ready')) {
      timer = setInterval(() => child.kill('SIGWINCH'), 1);
    }
  });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => {
    child.on('exit', (c, s) => resolve([c, s]));
  });
  clearInterval(timer);
  assert.equal(signal, null, `the child died of ${signal}: ${err.trim().split('\n').pop() ?? ''}`);
  assert.equal(code, 0, err);
  const r = JSON.parse(out.slice(out.indexOf('{'))) as { calls: number; signals: number; same: boolean };
  assert.ok(r.signals >= 100, `only ${r.signals} signals arrived in ${r.calls} products`);
  assert.ok(r.calls >= 100, `only ${r.calls} products`);
  assert.ok(r.same, 'a product changed while signals arrived');
});

test('log-softmax, its backward, and softmax cross-entropy with label smoothing', () => {
  const nb = native();
  for (const [n, c] of [[4, 10], [1, 3], [32, 100]] as const) {
    const x = randn(n * c, 3);
    const y = ref.logSoftmax(x, n, c);
    assertClose(nb.logSoftmax(x, n, c), y, 'logSoftmax');
    const dy = randn(n * c);
    assertClose(nb.logSoftmaxBackward(dy, y, n, c), ref.logSoftmaxBackward(dy, y, n, c), 'logSoftmaxBackward');
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) labels[i] = rng.int(c);
    for (const smoothing of [0, 0.1]) {
      const got = nb.softmaxCrossEntropy(x, n, c, labels, smoothing);
      const want = ref.softmaxCrossEntropy(x, n, c, labels, smoothing);
      assert.ok(Math.abs(got.loss - want.loss) <= 1e-6 * Math.max(1, Math.abs(want.loss)),
        `loss ${got.loss} vs ${want.loss} (smoothing ${smoothing})`);
      assertClose(got.dlogits, want.dlogits, `dlogits (smoothing ${smoothing})`);
    }
  }
});

test('SGD step: momentum, dampening, Nesterov, weight decay, first step, no buffer', () => {
  const nb = native();
  const n = 70_001;
  const variants: SgdAttrs[] = [
    { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: false, firstStep: true },
    { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: false, firstStep: false },
    { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 1e-4, nesterov: true, firstStep: false },
    { lr: 0.05, momentum: 0.5, dampening: 0.5, weightDecay: 0, nesterov: false, firstStep: false },
    { lr: 0.01, momentum: 0, dampening: 0, weightDecay: 1e-4, nesterov: false, firstStep: false },
  ];
  for (const a of variants) {
    const p = randn(n);
    const g = randn(n);
    const buf = a.momentum === 0 ? null : randn(n);
    const p2 = p.slice();
    const buf2 = buf ? buf.slice() : null;
    nb.sgdStep(p, g, buf, a);
    ref.sgdStep(p2, g, buf2, a);
    assertClose(p, p2, `param ${JSON.stringify(a)}`, SAME_ORDER);
    if (buf && buf2) assertClose(buf, buf2, `momentum buffer ${JSON.stringify(a)}`, SAME_ORDER);
  }
});

test('kernel errors name the kernel and the shapes', () => {
  const nb = native();
  assert.throws(() => nb.conv2d(new Float32Array(2 * 8 * 8 * 4), [2, 8, 8, 4], new Float32Array(16 * 3 * 9), [16, 3, 3, 3],
    null, attrs(1, 1)), /native conv2d: .*input channels.*x \[2,8,8,4\], w \[16,3,3,3\]/);
  assert.throws(() => nb.conv2d(new Float32Array(10), [2, 8, 8, 3], new Float32Array(16 * 3 * 9), [16, 3, 3, 3],
    null, attrs(1, 1)), /native conv2d: x has 10 elements, expected 384/);
  assert.throws(() => nb.batchNormTraining(new Float32Array(12), [1, 2, 2, 3], new Float32Array(2), new Float32Array(3),
    1e-5, false), /native batchNormTraining: gamma has 2 elements, expected 3 \(x \[1,2,2,3\]/);
  assert.throws(() => nb.add(new Float32Array(3), new Float32Array(4)), /native add: b has 4 elements, expected 3/);
  assert.throws(() => nb.softmaxCrossEntropy(new Float32Array(6), 2, 3, Int32Array.from([0, 3]), 0),
    /native softmaxCrossEntropy: label 3 at row 1 is outside \[0, 3\)/);
});

test('folded inference (BN in the conv, ReLU and residual add as post-ops) equals eval-mode forward', () => {
  const nb = native();
  const model = cifarResNet(20, { shortcut: 'B', numClasses: 10, seed: 3 });
  // Non-trivial statistics, so that folding has something to fold.
  for (const [, m] of model.namedModules()) {
    if (m instanceof BatchNorm2d) {
      m.weight.data.set(uniform(m.numFeatures, 0.5, 1.5));
      m.bias.data.set(randn(m.numFeatures, 0.2));
      m.runningMean.data.set(randn(m.numFeatures, 0.2));
      m.runningVar.data.set(uniform(m.numFeatures, 0.5, 2));
    }
  }
  model.eval();
  const xShape: Shape4 = [2, 32, 32, 3];
  const x = randn(numel(xShape));
  setBackend('reference');
  const want = noGrad(() => model.forward(new Tensor(x, xShape))).data;
  setBackend(nb);
  const input = new Tensor(x, xShape);
  assertClose(compileInference(model)(input).data, want, 'logits', CHAINED);
  assertClose(compileInference(model, { chunk: 1 })(input).data, want, 'logits, one image at a time', CHAINED);
});

test('thread count can be set, and results do not depend on it', () => {
  const nb = native();
  const before = nativeThreads();
  assert.ok(before >= 1);
  const c = convCases[2]!;
  const x = randn(numel(c.x));
  const w = randn(numel(c.w), 0.2);
  const want = nb.conv2d(x, c.x, w, c.w, null, c.a);
  try {
    setNativeThreads(1);
    assert.equal(nativeThreads(), 1);
    assertClose(nb.conv2d(x, c.x, w, c.w, null, c.a), want, 'y with one thread', SAME_ORDER);
  } finally {
    setNativeThreads(before);
  }
  assert.throws(() => setNativeThreads(0), /native setThreads: threads must lie in \[1, 9999\]/);
});
