// Decoding one image (PNG, JPEG, WebP, TIFF, ...), a file or bytes received, with sharp
// (libvips) into uint8 HWC pixels of a fixed size and channel count.
import sharp, { type Sharp } from 'sharp';
import { DataError } from './errors.js';
import { errorText } from './files.js';

/** An image file, or an image's bytes (e.g. a request body) with the name messages give it. */
export type ImageSource = string | { readonly name: string; readonly bytes: Uint8Array };

/** sharp's default limit on width x height (0x3FFF x 0x3FFF). */
export const SHARP_MAX_PIXELS = 0x3fff * 0x3fff;

/** The header of an image claims more pixels than the limit it was decoded under. */
export class ImageTooLargeError extends DataError {}

export interface DecodeOptions {
  height: number;
  width: number;
  /** 1 (greyscale) or 3 (RGB). */
  channels: 1 | 3;
  /**
   * Convert images of another channel count (greyscale <-> RGB, alpha dropped)
   * instead of rejecting them.
   */
  convert?: boolean;
  /**
   * Refuse an image whose header claims more than this many pixels (width x height),
   * before decoding it: a small compressed file can claim billions (default:
   * SHARP_MAX_PIXELS).
   */
  maxPixels?: number;
  /**
   * Resize the shorter side to this many pixels first (bilinear, antialiased), then crop
   * the centre height x width, as torchvision's Resize(n) + CenterCrop (the ImageNet
   * presets); without it the image is scaled to cover height x width and centre-cropped.
   */
  resizeShorter?: number;
}

/** torchvision's Resize(size) output for an int size: the shorter side to `size`, the longer scaled and truncated. */
export function shorterSideSize(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

/** Python's round(): halves to even, as torchvision's center_crop rounds its offsets. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torchvision's center_crop offsets: int(round((size - crop) / 2)). */
export function centerCropOffset(size: number, crop: number): number {
  return roundHalfEven((size - crop) / 2);
}

export function channelWord(c: number): string {
  return ({ 1: 'greyscale', 2: 'greyscale + alpha', 3: 'RGB', 4: 'RGBA' } as Record<number, string>)[c] ?? `${c}-band`;
}

/** What an image's channels are, from its header: `1 channel (greyscale)`, `CMYK (4 channels)`. */
function describeChannels(channels: number, space: string | undefined): string {
  // Four channels are CMYK as often as RGBA (print JPEGs); the colour space tells them apart.
  if (space === 'cmyk') return `CMYK (${channels} channels)`;
  return `${channels} channel${channels > 1 ? 's' : ''} (${channelWord(channels)})`;
}

export interface ImageInfo {
  height: number;
  width: number;
  /** Alpha included: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA. */
  channels: number;
}

/** Size and channel count of an image file, read from its header. */
export async function imageInfo(file: string): Promise<ImageInfo> {
  try {
    const meta = await sharp(file).metadata();
    return { height: meta.height, width: meta.width, channels: meta.channels };
  } catch (e) {
    throw decodeError(file, e);
  }
}

/**
 * Pixels of `file` resized to height x width (scaled to cover, then centre-cropped, as
 * torchvision's Resize + CenterCrop), `channels` bytes per pixel.
 */
export async function decodeImage(source: ImageSource, opts: DecodeOptions): Promise<Uint8Array> {
  const file = typeof source === 'string' ? source : source.name;
  const input = typeof source === 'string' ? source : source.bytes;
  const maxPixels = opts.maxPixels ?? SHARP_MAX_PIXELS;
  let image: Sharp;
  let meta: { channels: number; space?: string; width: number; height: number; orientation?: number };
  try {
    // The header alone, without sharp's own pixel limit, so a claimed size gets the message below.
    meta = await sharp(input, { limitInputPixels: false }).metadata();
    // Photos are turned upright by their EXIF orientation, as a viewer shows them.
    image = sharp(input, { failOn: 'error', limitInputPixels: maxPixels }).autoOrient();
  } catch (e) {
    throw decodeError(file, e);
  }
  const { channels, space, width, height } = meta;
  if (width * height > maxPixels) {
    throw new ImageTooLargeError(file, `image is ${width}x${height} = ${width * height} pixels, more than the limit of ${maxPixels}; ` +
      'use a smaller image');
  }
  if (channels !== opts.channels && !opts.convert) {
    const is = space === 'cmyk' ? 'is' : 'has';
    throw new DataError(file, `image ${is} ${describeChannels(channels, space)}, ` +
      `expected ${opts.channels} (${channelWord(opts.channels)}); convert the image, or let the reader convert it ` +
      '(--convert-images)');
  }
  try {
    if (opts.resizeShorter !== undefined) {
      // The upright size: orientations 5 to 8 swap width and height.
      const [w, h] = (meta.orientation ?? 1) >= 5 ? [height, width] : [width, height];
      const size = shorterSideSize(w, h, opts.resizeShorter);
      if (size.width < opts.width || size.height < opts.height) {
        throw new DataError(file, `image is ${w}x${h}: resized to ${size.width}x${size.height} it is smaller than the ` +
          `${opts.width}x${opts.height} crop`);
      }
      // A bilinear kernel widened by the scale factor (antialiased, as PIL and torchvision's antialias=True);
      // no shrink-on-load, whose box filter would change the result.
      image = image
        .resize(size.width, size.height, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false })
        .extract({
          left: centerCropOffset(size.width, opts.width), top: centerCropOffset(size.height, opts.height), width: opts.width, height: opts.height,
        });
    } else {
      image = image.resize(opts.width, opts.height, { fit: 'cover', position: 'centre' });
    }
    const { data, info } = await image
      .removeAlpha()
      .toColourspace(opts.channels === 1 ? 'b-w' : 'srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== opts.channels || info.width !== opts.width || info.height !== opts.height) {
      throw new DataError(file, `decoded to ${info.width}x${info.height}x${info.channels}, expected ${opts.width}x${opts.height}x${opts.channels}`);
    }
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (e) {
    throw e instanceof DataError ? e : decodeError(file, e);
  }
}

function decodeError(file: string, e: unknown): DataError {
  const text = errorText(e);
  if (/ENOENT|missing|does not exist/i.test(text)) return new DataError(file, 'no such file');
  return new DataError(file, `cannot decode the image (${text.replace(/:\s*$/, '')}); expected a PNG or JPEG file`);
}
