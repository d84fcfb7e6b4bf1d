// Class-per-folder image trees, as torchvision.datasets.ImageFolder:
// root/<class name>/<image file>, classes sorted by name and numbered from 0.
import { type Dirent, readdirSync, readlinkSync, type Stats, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { InMemoryDataset, type ImageDataset } from './dataset.js';
import { DataError } from './errors.js';
import { requireDirectory } from './files.js';
import { decodeImage, imageInfo } from './image-decode.js';

export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff'];

/** The largest side taken from the first image when no size is given. */
export const MAX_DEFAULT_SIZE = 1024;

export interface ImageFolderListing {
  readonly root: string;
  readonly classNames: readonly string[];
  readonly files: readonly string[];
  readonly labels: Int32Array;
}

function visibleEntries(dir: string): Dirent[] {
  return readdirSync(dir, { withFileTypes: true }).filter((d) => !d.name.startsWith('.'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * What a symbolic link leads to. One that leads nowhere or back to itself is refused
 * with its path, as an unreadable image is.
 */
function followLink(path: string): Stats {
  try {
    return statSync(path);
  } catch (e) {
    const code = e instanceof Error && 'code' in e ? e.code : '';
    if (code === 'ELOOP') throw new DataError(path, 'a symbolic link that leads back to itself (a loop); remove it');
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new DataError(path, `a symbolic link to ${readlinkSync(path)}, which does not exist; remove the link or restore its target`);
    }
    throw new DataError(path, `cannot follow the symbolic link (${e instanceof Error ? e.message : String(e)})`);
  }
}

function isFolder(dir: string, entry: Dirent): boolean {
  return entry.isSymbolicLink() ? followLink(join(dir, entry.name)).isDirectory() : entry.isDirectory();
}

/** The image files under `root`, one subfolder per class. */
export function listImageFolder(root: string): ImageFolderListing {
  requireDirectory(root, 'one subfolder per class with PNG/JPEG images in each (root/<class>/<image>)');
  const classNames = visibleEntries(root).filter((d) => isFolder(root, d)).map((d) => d.name);
  if (classNames.length === 0) {
    throw new DataError(root, 'has no class subfolders: expected one subfolder per class (root/<class>/<image>.png)');
  }
  const files: string[] = [];
  const labels: number[] = [];
  classNames.forEach((name, label) => {
    const dir = join(root, name);
    for (const d of visibleEntries(dir)) {
      if (!IMAGE_EXTENSIONS.includes(extname(d.name).toLowerCase())) continue;
      // Checked here, where the message can say it is a link: decoding would only find no file.
      if (d.isSymbolicLink()) followLink(join(dir, d.name));
      files.push(join(dir, d.name));
      labels.push(label);
    }
  });
  if (files.length === 0) {
    throw new DataError(root, `no images found in its ${classNames.length} class folders (looked for ${IMAGE_EXTENSIONS.join(' ')})`);
  }
  return { root, classNames, files, labels: Int32Array.from(labels) };
}

export interface ImageFolderOptions {
  /** Side of the square images the set is resized to (default: the first image's height). */
  size?: number;
  /** Channels every image must have (default: the first image's, 1 or 3). */
  channels?: 1 | 3;
  /** Convert images of another channel count instead of rejecting them. */
  convert?: boolean;
  /** Images decoded at once (sharp decodes on the libuv thread pool). */
  concurrency?: number;
  /** Class names to use (a test folder must number its classes as the training folder). */
  classNames?: readonly string[];
}

/** Images decoded from disk whenever they are read: for trees too large for memory. */
export class ImageFolderDataset implements ImageDataset {
  readonly length: number;
  readonly labels: Int32Array;
  readonly classNames: readonly string[];

  private constructor(readonly name: string, readonly files: readonly string[], labels: Int32Array,
    classNames: readonly string[], readonly height: number, readonly width: number, readonly channels: 1 | 3,
    readonly convert: boolean, readonly concurrency: number) {
    this.length = files.length;
    this.labels = labels;
    this.classNames = classNames;
  }

  /** Index `root`; the size and channel count come from the options or the first image. */
  static async open(root: string, name: string, opts: ImageFolderOptions = {}): Promise<ImageFolderDataset> {
    const listing = listImageFolder(root);
    let labels = listing.labels;
    if (opts.classNames) labels = renumber(listing, opts.classNames);
    const first = opts.channels === undefined || opts.size === undefined ? await imageInfo(listing.files[0]!) : null;
    // An alpha channel is not part of what is classified: a first image with alpha sets 1 or 3.
    const channels = opts.channels ?? (first!.channels <= 2 ? 1 : 3);
    const size = opts.size ?? first!.height;
    if (opts.size === undefined && !(size >= 1 && size <= MAX_DEFAULT_SIZE)) {
      // Every image is resized to this side: a photo's 4000 pixels (or a damaged header's
      // 100000) would make each batch gigabytes.
      throw new DataError(listing.files[0]!, `the first image is ${first!.width}x${size} pixels; training resizes every image to the ` +
        `first one's height unless told otherwise: give the side to resize to (--image-size, e.g. 224)`);
    }
    return new ImageFolderDataset(name, listing.files, labels, opts.classNames ?? listing.classNames,
      size, size, channels, opts.convert ?? false, opts.concurrency ?? 8);
  }

  async readImages(indices: ArrayLike<number>, out: Uint8Array): Promise<void> {
    const s = this.height * this.width * this.channels;
    const opts = { height: this.height, width: this.width, channels: this.channels, convert: this.convert };
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < indices.length) {
        const k = next++;
        const file = this.files[indices[k]!];
        if (file === undefined) throw new RangeError(`${this.name}: image index ${indices[k]} out of range`);
        out.set(await decodeImage(file, opts), k * s);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, indices.length) }, worker));
  }

  /** Decode every image once and keep the pixels in memory. */
  async toMemory(): Promise<InMemoryDataset> {
    const all = Int32Array.from({ length: this.length }, (_, i) => i);
    const pixels = new Uint8Array(this.length * this.height * this.width * this.channels);
    await this.readImages(all, pixels);
    return new InMemoryDataset(this.name, pixels, this.labels, this.height, this.width, this.channels, this.classNames);
  }
}

/** Labels of `listing` numbered by `classNames` (every folder must be one of them). */
function renumber(listing: ImageFolderListing, classNames: readonly string[]): Int32Array {
  const index = new Map(classNames.map((n, i) => [n, i]));
  const map = listing.classNames.map((n) => {
    const i = index.get(n);
    if (i === undefined) {
      throw new DataError(join(listing.root, n), `class folder '${n}' is not one of the ${classNames.length} training classes (${classNames.slice(0, 5).join(', ')}${classNames.length > 5 ? ', ...' : ''})`);
    }
    return i;
  });
  return Int32Array.from(listing.labels, (l) => map[l]!);
}

/** A class-per-folder tree decoded into memory. */
export async function readImageFolder(root: string, name: string, opts: ImageFolderOptions = {}): Promise<InMemoryDataset> {
  return (await ImageFolderDataset.open(root, name, opts)).toMemory();
}
