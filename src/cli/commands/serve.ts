// `resnet serve <model>`: classify images over HTTP with a trained model (src/serve/server.ts).
// Prints the URL on one line once listening; SIGTERM or Ctrl-C stops accepting requests,
// finishes those in flight and exits 0.
import { ImageClassifier } from '../../train/classify.js';
import { loadModelFile } from '../../train/model-file.js';
import { type RunningServer, type ServeOptions, startServer } from '../../serve/server.js';
import { decimalNumber } from '../train-flags.js';
import { UserError } from '../errors.js';
import { selectBackend } from '../select-backend.js';
import { userErrors } from '../user-errors.js';
import type { RegisterCommand } from './index.js';
import { imagesThatFit } from './predict.js';

/** The environment variable read for the token when --token is not given (a flag shows in `ps`). */
export const TOKEN_ENV = 'RESNET_SERVE_TOKEN';

interface ServeFlags {
  host: string;
  port: string;
  token?: string;
  maxBatch: string;
  maxWaitMs: string;
  maxQueue: string;
  maxBody: string;
  maxPixels: string;
  convertImages?: boolean;
  backend?: string;
}

export const registerServe: RegisterCommand = (program) => {
  const cmd = program.command('serve')
    .description('serve a trained model over HTTP: POST images to /v1/predict, get the top-k classes as JSON')
    .argument('<model>', 'a model file written by `resnet train` (.safetensors) or a run folder')
    .option('--host <host>', 'address to listen on (0.0.0.0: every interface)', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', '8080')
    .option('--token <token>', `require "Authorization: Bearer <token>" on every route but /health (or set ${TOKEN_ENV})`)
    .option('--max-batch <n>', 'images run through the model together at most', '16')
    .option('--max-wait-ms <ms>', 'how long the first image of a batch waits for others', '5')
    .option('--max-queue <n>', 'images waiting for a batch at most; beyond that requests get 503 (also the most images per request)', '256')
    .option('--max-body <size>', 'largest request body, e.g. 10MB, 512KB or bytes', '10MB')
    .option('--max-pixels <n>', 'largest image (width x height) accepted, checked before decoding', '40000000')
    .option('--convert-images', 'convert images of another channel count (e.g. RGB for a greyscale model) instead of rejecting them')
    .option('--backend <name>', 'compute backend: native or reference');
  cmd.addHelpText('after', '\nExample:\n  resnet serve runs/20240101-120000-resnet20-fashion-mnist --port 8080\n' +
    '  curl -H "Content-Type: image/png" --data-binary @shoe.png http://127.0.0.1:8080/v1/predict?k=3');
  cmd.action((model: string) => userErrors(() => serve(model, cmd.opts<ServeFlags>())));
};

export function integerFlag(flag: string, text: string, min: number, max: number): number {
  const n = decimalNumber(text);
  if (n === null || !Number.isInteger(n) || n < min || n > max) {
    throw new UserError(`--${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return n;
}

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** A size like 10MB, 512KiB or 1048576 (bytes) in bytes. */
export function parseSize(flag: string, text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  const bytes = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!(bytes >= 1 && bytes <= 2 ** 31 - 1)) {
    throw new UserError(`--${flag} must be a size from 1 byte to 2GiB such as 10MB, 512KB or 1048576, got ${JSON.stringify(text)}`);
  }
  return bytes;
}

/** A failure to listen as a one-line message about --host or --port. */
export function listenError(e: unknown, opts: { host: string; port: number }): unknown {
  const code = (e as { code?: unknown }).code;
  if (code === 'EADDRINUSE') return new UserError(`--port ${opts.port}: the port is in use on ${opts.host}; choose another port, or 0 for any free one`);
  if (code === 'EACCES') return new UserError(`--port ${opts.port}: not allowed to listen on it (EACCES); choose a port above 1023`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new UserError(`--host ${opts.host}: cannot listen on this address (${String(code)}); give an address of this machine, e.g. 127.0.0.1 or 0.0.0.0`);
  }
  return e;
}

async function serve(modelPath: string, flags: ServeFlags): Promise<void> {
  selectBackend(flags.backend);
  const token = flags.token ?? process.env[TOKEN_ENV];
  if (token !== undefined && !/^\S+$/.test(token)) throw new UserError('--token must be a non-empty word without spaces');
  const opts: ServeOptions = {
    host: flags.host,
    port: integerFlag('port', flags.port, 0, 65535),
    token,
    maxBatch: integerFlag('max-batch', flags.maxBatch, 1, 4096),
    maxWaitMs: integerFlag('max-wait-ms', flags.maxWaitMs, 0, 3_600_000),
    maxQueue: integerFlag('max-queue', flags.maxQueue, 1, 1_000_000),
    maxBody: parseSize('max-body', flags.maxBody),
    maxPixels: integerFlag('max-pixels', flags.maxPixels, 1, 1e10),
    convertImages: flags.convertImages ?? false,
  };
  const loaded = loadModelFile(modelPath);
  const classifier = new ImageClassifier(loaded);
  const { card } = loaded;
  const fit = imagesThatFit(loaded.file, card.model, loaded.model, [card.imageSize[0], card.imageSize[1], card.inChannels]);
  if (opts.maxBatch > fit) throw new UserError(`--max-batch ${opts.maxBatch}: only ${fit} images fit in the memory available; use --max-batch ${fit} or less`);

  let server: RunningServer;
  try {
    server = await startServer(classifier, opts);
  } catch (e) {
    throw listenError(e, opts);
  }
  process.stdout.write(`serving ${card.model} (${card.dataset}, ${card.numClasses} classes) from ${loaded.file} at ${server.url}\n`);

  // SIGTERM or Ctrl-C: stop accepting, finish the requests in flight, return (exit 0). A second one stops at once.
  await new Promise<void>((resolve, reject) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        process.stderr.write(`resnet serve: ${signal} again: stopping without waiting for the requests in flight\n`);
        process.exit(1);
      }
      stopping = true;
      process.stderr.write(`resnet serve: ${signal}: finishing the requests in flight\n`);
      server.close().then(() => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        process.stderr.write('resnet serve: stopped\n');
        resolve();
      }, reject);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
