import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { channelStats, Compose, InMemoryDataset, Normalize, RandomCrop, RandomErasing, RandomHorizontalFlip, type FloatImage } from '../src/data/index.js';
import { Rng } from '../src/tensor/random.js';

function image(h: number, w: number, c: number): FloatImage {
  const data = new Float32Array(h * w * c);
  for (let i = 0; i < data.length; i++) data[i] = i + 1;
  return { data, height: h, width: w, channels: c };
}

/** Crop of the zero-padded image at offset (top, left) in padded coordinates, computed directly. */
function paddedCrop(img: FloatImage, pad: number, top: number, left: number): Float32Array {
  const { height: h, width: w, channels: c } = img;
  const out = new Float32Array(h * w * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) {
    const sy = y + top - pad;
    const sx = x + left - pad;
    out[(y * w + x) * c + k] = sy >= 0 && sy < h && sx >= 0 && sx < w ? img.data[(sy * w + sx) * c + k]! : 0;
  }
  return out;
}

describe('transforms', () => {
  it('RandomCrop with padding picks each of the (2p+1)^2 zero-padded windows', () => {
    const src = image(5, 4, 2);
    const crop = new RandomCrop(2);
    const rng = new Rng(1);
    const seen = new Map<string, number>();
    for (let trial = 0; trial < 2000; trial++) {
      const out = crop.apply({ ...src, data: src.data.slice() }, rng);
      assert.deepEqual([out.height, out.width, out.channels], [5, 4, 2]);
      let found: string | null = null;
      for (let top = 0; top <= 4 && !found; top++) for (let left = 0; left <= 4 && !found; left++) {
        if (paddedCrop(src, 2, top, left).every((v, i) => v === out.data[i])) found = `${top},${left}`;
      }
      assert.ok(found, 'the crop is not a window of the zero-padded image');
      seen.set(found, (seen.get(found) ?? 0) + 1);
    }
    assert.equal(seen.size, 25);
    for (const count of seen.values()) assert.ok(count > 40 && count < 120, `window drawn ${count} times of 2000`);
  });

  it('RandomCrop to a smaller size stays inside the padded image', () => {
    const out = new RandomCrop(0, 3, 2).apply(image(5, 4, 1), new Rng(3));
    assert.deepEqual([out.height, out.width], [3, 2]);
    assert.ok(out.data.every((v) => v > 0));
  });

  it('RandomHorizontalFlip mirrors rows with probability p', () => {
    const src = image(2, 3, 2);
    const flipped = new RandomHorizontalFlip(1).apply({ ...src, data: src.data.slice() }, new Rng(0));
    // Row 0 pixels [1,2] [3,4] [5,6] -> [5,6] [3,4] [1,2].
    assert.deepEqual(Array.from(flipped.data), [5, 6, 3, 4, 1, 2, 11, 12, 9, 10, 7, 8]);
    const rng = new Rng(5);
    const half = new RandomHorizontalFlip(0.5);
    let flips = 0;
    for (let i = 0; i < 4000; i++) if (half.apply({ ...src, data: src.data.slice() }, rng).data[0] === 5) flips++;
    assert.ok(Math.abs(flips / 4000 - 0.5) < 0.03, `flip rate ${flips / 4000}`);
  });

  it('Normalize subtracts the mean and divides by the std per channel', () => {
    const out = new Normalize([1, 2], [2, 4]).apply(image(1, 2, 2));
    assert.deepEqual(Array.from(out.data), [0, 0, 1, 0.5]);
    assert.throws(() => new Normalize([0], [0]), /standard deviations must be > 0/);
  });

  it('RandomErasing fills one rectangle of the allowed area and aspect, leaves the rest', () => {
    const erase = new RandomErasing({ p: 1, value: -7 });
    const rng = new Rng(11);
    let erasedImages = 0;
    for (let trial = 0; trial < 300; trial++) {
      const src = image(28, 28, 1);
      const out = erase.apply({ ...src, data: src.data.slice() }, rng);
      const rows: number[] = [];
      const cols: number[] = [];
      out.data.forEach((v, i) => {
        if (v === -7) { rows.push(Math.floor(i / 28)); cols.push(i % 28); } else assert.equal(v, src.data[i]);
      });
      if (rows.length === 0) continue;
      erasedImages++;
      const eh = Math.max(...rows) - Math.min(...rows) + 1;
      const ew = Math.max(...cols) - Math.min(...cols) + 1;
      assert.equal(rows.length, eh * ew, 'erased pixels form a rectangle');
      const frac = (eh * ew) / 784;
      assert.ok(frac >= 0.01 && frac <= 0.36, `erased fraction ${frac}`);
      assert.ok(eh / ew >= 0.2 && eh / ew <= 5, `aspect ${eh / ew}`);
    }
    assert.ok(erasedImages > 250, `only ${erasedImages} of 300 images erased with p = 1`);
    const none = new RandomErasing({ p: 0 });
    const src = image(4, 4, 1);
    assert.deepEqual(none.apply({ ...src, data: src.data.slice() }, rng).data, src.data);
  });

  it('Compose applies in order and the same seed gives the same result', () => {
    const t = new Compose([new RandomCrop(2), new RandomHorizontalFlip(), new Normalize([0.5], [0.25]), new RandomErasing()]);
    const run = (seed: number): Float32Array => {
      const rng = new Rng(seed);
      const outs: Float32Array[] = [];
      for (let i = 0; i < 20; i++) outs.push(t.apply(image(8, 8, 1), rng).data);
      return Float32Array.from(outs.flatMap((o) => Array.from(o)));
    };
    assert.deepEqual(run(4), run(4));
    assert.notDeepEqual(run(4), run(5));
  });

  it('channelStats gives the per-channel mean and std of pixels in [0, 1]', async () => {
    // Channel 0 alternates 0 and 255 (mean 0.5, std 0.5); channel 1 is 51 (mean 0.2, std 0).
    const px = Uint8Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => (i % 2 === 0 ? ((i / 2) % 2 === 0 ? 0 : 255) : 51));
    const ds = new InMemoryDataset('s', px, new Int32Array(2), 3, 2, 2, ['a']);
    const { mean, std } = await channelStats(ds, 1);
    assert.ok(Math.abs(mean[0]! - 0.5) < 1e-12 && Math.abs(std[0]! - 0.5) < 1e-12);
    assert.ok(Math.abs(mean[1]! - 0.2) < 1e-12);
    assert.equal(std[1], 1e-3);
  });
});
