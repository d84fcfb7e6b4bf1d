// Bad shapes fail at the op boundary with an Error that names the op and the shapes
// involved, never deep inside a kernel.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { F, type Tensor, zeros } from '../src/index.js';

/** Assert that `fn` throws an Error whose message contains every one of `parts`. */
function throwsNaming(fn: () => unknown, parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error, `expected an Error, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message "${e.message}" does not mention "${p}"`);
    return true;
  });
}

const x4 = (...s: number[]): Tensor => zeros(s);

describe('shape errors name the op and the shapes', () => {
  it('conv2d: channel mismatch between input and weight', () => {
    throwsNaming(() => F.conv2d(x4(1, 5, 5, 3), x4(8, 4, 3, 3)), ['conv2d', '[1, 5, 5, 3]', '[8, 4, 3, 3]']);
  });

  it('conv2d: bias of the wrong length', () => {
    throwsNaming(() => F.conv2d(x4(1, 5, 5, 3), x4(8, 3, 3, 3), x4(4)), ['conv2d', '[4]', '[8, 3, 3, 3]']);
  });

  it('conv2d: input not 4-D, or a weight not 4-D', () => {
    throwsNaming(() => F.conv2d(x4(5, 5, 3), x4(8, 3, 3, 3)), ['conv2d', '[5, 5, 3]', 'NHWC']);
    throwsNaming(() => F.conv2d(x4(1, 5, 5, 3), x4(8, 3, 3)), ['conv2d', '[8, 3, 3]', 'OIHW']);
  });

  it('conv2d: input smaller than the kernel', () => {
    throwsNaming(() => F.conv2d(x4(1, 2, 2, 3), x4(8, 3, 3, 3)), ['conv2d', '[1, 2, 2, 3]', '3x3']);
  });

  it('batchNorm2d: parameters with the wrong number of channels', () => {
    throwsNaming(() => F.batchNorm2d(x4(2, 3, 3, 4), x4(4), x4(4), x4(5), x4(4), { training: true }),
      ['batchNorm2d', '[2, 3, 3, 4]', '[5]', 'weight']);
    throwsNaming(() => F.batchNorm2d(x4(2, 3, 3, 4), x4(3), x4(4), x4(4), x4(4), { training: false }),
      ['batchNorm2d', '[2, 3, 3, 4]', '[3]', 'running_mean']);
  });

  it('batchNorm2d: one value per channel in training mode', () => {
    throwsNaming(() => F.batchNorm2d(x4(1, 1, 1, 4), x4(4), x4(4), x4(4), x4(4), { training: true }),
      ['batchNorm2d', '[1, 1, 1, 4]']);
  });

  it('add and addRelu: different shapes', () => {
    throwsNaming(() => F.add(x4(2, 3), x4(3, 2)), ['add', '[2, 3]', '[3, 2]']);
    throwsNaming(() => F.addRelu(x4(1, 4, 4, 8), x4(1, 4, 4, 4)), ['addRelu', '[1, 4, 4, 8]', '[1, 4, 4, 4]']);
  });

  it('padChannelsSubsample: more input channels than output channels', () => {
    throwsNaming(() => F.padChannelsSubsample(x4(1, 4, 4, 8), 2, 6, 1), ['padChannelsSubsample', '[1, 4, 4, 8]', '[1, 2, 2, 6]']);
  });

  it('maxPool2d and avgPool2d: input not 4-D or smaller than the window', () => {
    throwsNaming(() => F.maxPool2d(x4(4, 4, 3), { kernelSize: 2 }), ['maxPool2d', '[4, 4, 3]']);
    throwsNaming(() => F.avgPool2d(x4(1, 2, 2, 3), { kernelSize: 3 }), ['avgPool2d', '[1, 2, 2, 3]', '3x3']);
  });

  it('globalAvgPool: input not 4-D', () => {
    throwsNaming(() => F.globalAvgPool(x4(2, 8)), ['globalAvgPool', '[2, 8]']);
  });

  it('reshape and flatten: sizes that do not fit', () => {
    throwsNaming(() => F.reshape(x4(2, 3, 4), [5, -1]), ['reshape', '[2, 3, 4]', '[5, -1]']);
    throwsNaming(() => F.reshape(x4(2, 3, 4), [4, 4]), ['reshape', '[2, 3, 4]', '[4, 4]']);
    throwsNaming(() => F.flatten(zeros([])), ['flatten', '[]']);
  });

  it('linear: feature mismatch, bias mismatch, input not 2-D', () => {
    throwsNaming(() => F.linear(x4(2, 5), x4(3, 4)), ['linear', '[2, 5]', '[3, 4]']);
    throwsNaming(() => F.linear(x4(2, 4), x4(3, 4), x4(4)), ['linear', '[4]', '[3, 4]']);
    throwsNaming(() => F.linear(x4(2, 1, 1, 4), x4(3, 4)), ['linear', '[2, 1, 1, 4]']);
  });

  it('matmul: inner dimensions differ', () => {
    throwsNaming(() => F.matmul(x4(2, 3), x4(4, 5)), ['matmul', '[2, 3]', '[4, 5]']);
  });

  it('logSoftmax: input not 2-D', () => {
    throwsNaming(() => F.logSoftmax(x4(2, 3, 4)), ['logSoftmax', '[2, 3, 4]']);
  });

  it('crossEntropy: label count differs from the batch, label out of range, logits not 2-D', () => {
    throwsNaming(() => F.crossEntropy(x4(4, 10), new Int32Array(3)), ['crossEntropy', '[4, 10]', '[3]']);
    throwsNaming(() => F.crossEntropy(x4(2, 10), Int32Array.from([0, 10])), ['crossEntropy', 'label 10', '10 classes']);
    throwsNaming(() => F.crossEntropy(x4(4), new Int32Array(4)), ['crossEntropy', '[4]']);
  });

  it('backward: a gradient whose shape differs from the tensor', () => {
    const y = F.relu(zeros([2, 3], true));
    throwsNaming(() => y.backward(zeros([3, 3])), ['backward', '[3, 3]', '[2, 3]']);
  });
});
