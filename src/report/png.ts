// Bitmaps for places that want one (README, issue trackers): SVG rasterised by sharp
// (librsvg inside libvips), and raw pixels encoded as PNG for inline data URIs.
import { writeFileAtomic } from '../util/atomic-write.js';
import type { Sharp, SharpOptions } from 'sharp';

// Loaded on first use: importing the charts alone should not load libvips.
async function sharpOf(input: Buffer, options: SharpOptions): Promise<Sharp> {
  const { default: sharp } = await import('sharp');
  return sharp(input, options);
}

/** PNG bytes of an SVG document; `scale` 2 gives a sharp image on high-density screens. */
export async function svgToPng(svg: string, scale = 2): Promise<Buffer> {
  // librsvg renders at 72 dpi per SVG pixel; density scales it.
  return (await sharpOf(Buffer.from(svg), { density: 72 * scale })).png({ compressionLevel: 9 }).toBuffer();
}

/** Writes `path` atomically (temp file + rename), so a reader never sees half an image. */
export async function writeSvgAsPng(svg: string, path: string, scale = 2): Promise<void> {
  const png = await svgToPng(svg, scale);
  writeFileAtomic(path, png);
}

export interface RawImage {
  width: number;
  height: number;
  /** 1 (grey) or 3 (RGB). */
  channels: 1 | 3;
  /** Row-major HWC bytes, 0..255. */
  pixels: Uint8Array;
}

/** A PNG data URI of a small image, upscaled with nearest-neighbour so pixels stay crisp. */
export async function imageDataUri(image: RawImage, upscale = 2): Promise<string> {
  const { width, height, channels, pixels } = image;
  if (pixels.length !== width * height * channels) {
    throw new Error(`imageDataUri: ${pixels.length} bytes do not make a ${height}x${width}x${channels} image`);
  }
  let img = (await sharpOf(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), { raw: { width, height, channels } }))
    .resize(width * upscale, height * upscale, { kernel: 'nearest' });
  // Keep grey images grey: a one-channel PNG is a third the size of an RGB one.
  if (channels === 1) img = img.toColourspace('b-w');
  const png = await img.png().toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}
