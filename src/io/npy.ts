// NumPy's .npy format, version 1.0 (numpy/lib/format.py): the magic string, a little-endian
// uint16 header length, a Python dict literal giving dtype, order and shape, padded with
// spaces to a multiple of 64 bytes and ending in a newline, then the raw C-order data.
import { writeFileAtomic } from '../util/atomic-write.js';

/** The bytes of a float32 array of `shape` as an .npy file. */
export function serializeNpy(data: Float32Array, shape: readonly number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`npy: ${data.length} values for shape (${shape.join(', ')})`);
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  // Float32Array is in the platform's byte order; every platform Node runs on is little-endian.
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** Write a float32 array of `shape` as an .npy file (atomically). */
export function saveNpy(path: string, data: Float32Array, shape: readonly number[]): void {
  writeFileAtomic(path, serializeNpy(data, shape));
}
