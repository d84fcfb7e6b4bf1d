// Per-channel mean and standard deviation of a data set's pixels in [0, 1], the
// statistics torchvision's Normalize is given (computed on the training split).
import type { ImageDataset } from './dataset.js';

export interface ChannelStats {
  mean: number[];
  std: number[];
}

export async function channelStats(ds: ImageDataset, chunk = 4096): Promise<ChannelStats> {
  const c = ds.channels;
  const imageSize = ds.height * ds.width * c;
  const sum = new Float64Array(c);
  const sumSq = new Float64Array(c);
  const buf = new Uint8Array(chunk * imageSize);
  for (let start = 0; start < ds.length; start += chunk) {
    const count = Math.min(chunk, ds.length - start);
    await ds.readImages(Int32Array.from({ length: count }, (_, k) => start + k), buf);
    const end = count * imageSize;
    for (let i = 0; i < end; i += c) {
      for (let k = 0; k < c; k++) {
        const v = buf[i + k]!;
        sum[k]! += v;
        sumSq[k]! += v * v;
      }
    }
  }
  const pixels = ds.length * ds.height * ds.width;
  const mean: number[] = [];
  const std: number[] = [];
  for (let k = 0; k < c; k++) {
    const m = sum[k]! / pixels;
    const v = Math.max(sumSq[k]! / pixels - m * m, 0);
    mean.push(m / 255);
    // Floored so that a constant channel does not divide by zero.
    std.push(Math.max(Math.sqrt(v) / 255, 1e-3));
  }
  return { mean, std };
}
