// The HTTP server of `resnet serve` (Fastify): image classification with a trained model.
//
//   POST /v1/predict   an image as the body (image/*, application/octet-stream), or several
//                      as multipart/form-data; ?k=5: the top-k classes of each
//   GET  /v1/model     architecture, classes, input size, preprocessing
//   GET  /health       200 while serving
//   GET  /metrics      Prometheus text format
//   GET  /v1/model.onnx the model as ONNX (NHWC input, folded BatchNorm), for the page's in-browser mode
//   GET  /             the page: choose or drop images, see each one's top-5 (src/serve/page/)
//
// Images of concurrent requests are run through the model together (src/serve/batcher.ts).
// Every failure is a JSON answer { statusCode, error, code, message } whose message says
// what was wrong and what to send instead; nothing a client sends can stop the server.
// Bodies are limited in bytes (413), and images in claimed pixels, checked on the header
// before anything is decoded (413); a full queue answers 503 with Retry-After.
import { createHash, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';
import fastifyMultipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { DataError } from '../data/errors.js';
import { ImageTooLargeError } from '../data/image-decode.js';
import { exportOnnx } from '../io/onnx-export.js';
import { PreActResNet } from '../models/preact_resnet.js';
import { info } from '../models/registry.js';
import { ResNet } from '../models/resnet.js';
import type { ImageClassifier } from '../train/classify.js';
import { type Asset, Assets } from './assets.js';
import { Batcher, QueueFullError } from './batcher.js';
import { ServerMetrics } from './metrics.js';

export interface ServeOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  /** Bearer token every route but /health requires; none: no authentication. */
  token?: string;
  maxBatch: number;
  maxWaitMs: number;
  /** Images waiting for a batch at most; more are refused with 503. */
  maxQueue: number;
  /** Largest request body in bytes (all parts of a multipart request together). */
  maxBody: number;
  /** Largest image (width x height) a header may claim. */
  maxPixels: number;
  /** Convert images of another channel count instead of refusing them. */
  convertImages: boolean;
  /** Where failures of the server itself (500s) are reported. */
  log?: (line: string) => void;
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  /** Stop accepting requests, finish those in flight (their queued images run at once), close. */
  close: () => Promise<void>;
}

/** The top-k classes the server answers when ?k is not given. */
export const DEFAULT_K = 5;

/** A request the server refuses, with its status and a message for the client. */
export class HttpError extends Error {
  override readonly name = 'HttpError';

  constructor(readonly statusCode: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

const MEDIA_TYPES = 'send the image bytes as image/png, image/jpeg or application/octet-stream, or several images as multipart/form-data';

/** The media type of a Content-Type header, lower case, without parameters ('' when none). */
function mediaType(req: FastifyRequest): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function isImageType(type: string): boolean {
  return type === '' || type === 'application/octet-stream' || type.startsWith('image/');
}

/** ?k as a positive integer, DEFAULT_K when absent. */
function parseK(query: unknown): number {
  const raw = (query as Record<string, unknown> | undefined)?.['k'];
  if (raw === undefined) return DEFAULT_K;
  const k = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(k) || k < 1) {
    throw new HttpError(400, 'bad_k', `k must be a positive integer (the number of classes to return), got ${JSON.stringify(raw)}`);
  }
  return k;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Why a request's Authorization header does not carry `token`, or null when it does. */
function authProblem(header: string | undefined, token: string): string | null {
  if (header === undefined || header === '') return 'missing bearer token: send the header "Authorization: Bearer <token>"';
  const m = /^Bearer +(\S+) *$/i.exec(header);
  if (!m) return 'the Authorization header is not a bearer token: send "Authorization: Bearer <token>"';
  // Equal-length digests, so the comparison takes the same time whatever the token's length and content.
  return timingSafeEqual(digest(m[1]!), digest(token)) ? null : 'wrong bearer token';
}

function bodyTooLarge(opts: ServeOptions): HttpError {
  return new HttpError(413, 'body_too_large', `the request body is larger than the limit of ${opts.maxBody} bytes; send a smaller image`);
}

/** An error as the client sees it. */
function asHttpError(e: unknown, opts: ServeOptions): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof QueueFullError) {
    return new HttpError(503, 'queue_full', `the server is busy: ${e.message}; try again later`, { 'retry-after': '1' });
  }
  if (e instanceof ImageTooLargeError) return new HttpError(413, 'image_too_large', e.message);
  if (e instanceof DataError) return new HttpError(400, 'bad_image', e.message);
  const err = e as { code?: unknown; statusCode?: unknown; message?: unknown };
  const code = typeof err.code === 'string' ? err.code : '';
  const message = typeof err.message === 'string' ? err.message : String(e);
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
      return bodyTooLarge(opts);
    case 'FST_FILES_LIMIT':
    case 'FST_PARTS_LIMIT':
      return new HttpError(413, 'too_many_images', `more than ${opts.maxQueue} images in one request; send at most ${opts.maxQueue}`);
    case 'FST_FIELDS_LIMIT':
      return new HttpError(413, 'too_many_fields', 'too many form fields in the multipart request; send only image files');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new HttpError(415, 'unsupported_media_type', `unsupported Content-Type; ${MEDIA_TYPES}`);
    default:
  }
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
  if (status >= 400 && status < 500) return new HttpError(status, code.toLowerCase() || 'bad_request', message);
  // Busboy's parse errors (a malformed multipart body) come without a status.
  if (/multipart|boundary|unexpected end of form/i.test(message)) {
    return new HttpError(400, 'bad_multipart', `the multipart body cannot be parsed (${message})`);
  }
  return new HttpError(500, 'internal_error', `internal error: ${message}`);
}

function send(reply: FastifyReply, e: HttpError): FastifyReply {
  return reply.code(e.statusCode).headers(e.headers).type('application/json; charset=utf-8')
    .send({ statusCode: e.statusCode, error: STATUS_CODES[e.statusCode] ?? 'Error', code: e.code, message: e.message });
}

interface NamedBytes {
  name: string;
  bytes: Uint8Array;
}

/** The image files of a multipart request (fields are ignored), within the byte and count limits. */
async function multipartImages(req: FastifyRequest, opts: ServeOptions): Promise<NamedBytes[]> {
  const images: NamedBytes[] = [];
  let total = 0;
  const parts = req.parts({ limits: { fileSize: opts.maxBody, files: opts.maxQueue, fields: 64, fieldSize: 64 * 1024, parts: opts.maxQueue + 64 } });
  for await (const part of parts) {
    if (part.type !== 'file') continue;
    const bytes = await part.toBuffer();
    total += bytes.length;
    if (total > opts.maxBody) throw bodyTooLarge(opts);
    images.push({ name: part.filename || part.fieldname, bytes });
  }
  if (images.length === 0) {
    throw new HttpError(400, 'no_image', 'the multipart request holds no file part; send each image as a file part (curl -F image=@photo.png)');
  }
  return images;
}

/** Routes anyone may ask for when the server has a token: the page holds no secret, it asks for the token. */
const PUBLIC_ROUTES = new Set(['/health', '/', '/page/:file', '/ort/:file']);

/**
 * The page's policy: scripts, styles, WebAssembly and connections from this server only
 * (no request leaves it), images from the files the user chose (blob: URLs).
 */
const PAGE_POLICY = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' blob: data:; style-src 'self'; object-src 'none'";

function sendAsset(reply: FastifyReply, asset: Asset | null, what: string): FastifyReply {
  if (asset === null) return send(reply, new HttpError(404, 'not_found', `no such file: ${what}`));
  return reply.type(asset.type).header('content-security-policy', PAGE_POLICY).header('cache-control', 'no-cache').send(asset.bytes);
}

/** Start serving `classifier` as `opts` says; resolves once listening. */
export async function startServer(classifier: ImageClassifier, opts: ServeOptions): Promise<RunningServer> {
  const { card } = classifier;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  // The gauge reads the queue's depth when /metrics is asked for, after the batcher exists.
  const metrics = new ServerMetrics(opts.maxBatch, () => batcher.depth);
  const batcher = new Batcher<Float32Array, Float32Array>((inputs) => {
    const x = new Float32Array(inputs.length * classifier.inputSize);
    inputs.forEach((input, i) => x.set(input, i * classifier.inputSize));
    const probs = classifier.probabilities(x, inputs.length);
    return inputs.map((_, i) => probs.slice(i * card.numClasses, (i + 1) * card.numClasses));
  }, { maxBatch: opts.maxBatch, maxWaitMs: opts.maxWaitMs, maxQueue: opts.maxQueue }, { batchRan: (n, s) => metrics.batch(n, s) });

  const app = Fastify({ logger: false, bodyLimit: opts.maxBody, return503OnClosing: true, forceCloseConnections: 'idle' });
  // Every body is bytes: an image, or multipart (whose parser the plugin adds below).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  await app.register(fastifyMultipart);

  app.setErrorHandler((e, _req, reply) => {
    const h = asHttpError(e, opts);
    if (h.statusCode >= 500 && h.code === 'internal_error') log(`resnet serve: ${h.message}`);
    return send(reply, h);
  });
  app.setNotFoundHandler((req, reply) => send(reply, new HttpError(404, 'not_found',
    `no route ${req.method} ${req.url.split('?')[0]}; the routes are POST /v1/predict, GET /v1/model, GET /v1/model.onnx, GET /health, GET /metrics and the page at GET /`)));

  if (opts.token !== undefined) {
    const token = opts.token;
    app.addHook('onRequest', async (req, reply) => {
      if (PUBLIC_ROUTES.has(req.routeOptions.url ?? '')) return;
      const problem = authProblem(req.headers.authorization, token);
      if (problem !== null) await send(reply, new HttpError(401, 'unauthorized', problem, { 'www-authenticate': 'Bearer realm="resnet"' }));
    });
  }
  app.addHook('onResponse', async (req, reply) => {
    metrics.request(req.method, req.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });

  app.get('/health', async () => ({ status: 'ok', model: card.model }));

  app.get('/metrics', async (_req, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.get('/v1/model', async () => {
    const [height, width] = card.imageSize;
    const arch = info(card.model);
    return {
      model: card.model,
      architecture: { name: card.model, description: arch.description, family: arch.family, width: card.width },
      dataset: card.dataset,
      classes: card.classNames,
      numClasses: card.numClasses,
      input: { height, width, channels: card.inChannels },
      preprocessing: classifier.describePreprocessing(),
      batching: { maxBatch: opts.maxBatch, maxWaitMs: opts.maxWaitMs, maxQueue: opts.maxQueue },
      limits: { maxBody: opts.maxBody, maxPixels: opts.maxPixels, maxImagesPerRequest: opts.maxQueue },
    };
  });

  // The ONNX export of the served weights, made on first request and kept: NHWC like the
  // server's own input, with the model card's classes and normalisation in its metadata.
  let onnx: Uint8Array | null = null;
  app.get('/v1/model.onnx', async (_req, reply) => {
    const model = classifier.loaded.model;
    if (!(model instanceof ResNet) && !(model instanceof PreActResNet)) {
      throw new HttpError(404, 'no_onnx', `${card.model} has no ONNX export; the page can only classify on the server`);
    }
    onnx ??= exportOnnx(model, {
      layout: 'NHWC', imageSize: card.imageSize, modelName: card.model, classNames: card.classNames,
      normalization: { mean: card.mean, std: card.std },
    });
    return reply.type('application/octet-stream').header('content-disposition', `attachment; filename="${card.model}.onnx"`).send(Buffer.from(onnx));
  });

  const assets = new Assets();
  app.get('/', async (_req, reply) => sendAsset(reply, assets.pageFile('index.html'), '/'));
  app.get<{ Params: { file: string } }>('/page/:file', async (req, reply) => sendAsset(reply, assets.pageFile(req.params.file), req.url));
  app.get<{ Params: { file: string } }>('/ort/:file', async (req, reply) => sendAsset(reply, assets.ortFile(req.params.file), req.url));

  app.post('/v1/predict', {
    // Refuse a body that is not an image before reading it.
    preParsing: async (req) => {
      const type = mediaType(req);
      if (type !== 'multipart/form-data' && !isImageType(type)) {
        throw new HttpError(415, 'unsupported_media_type', `Content-Type ${type} is not an image; ${MEDIA_TYPES}`);
      }
    },
  }, async (req, reply) => {
    const k = parseK(req.query);
    let sources: NamedBytes[];
    if (req.isMultipart()) {
      sources = await multipartImages(req, opts);
    } else {
      const body = req.body;
      if (!Buffer.isBuffer(body) || body.length === 0) throw new HttpError(400, 'no_image', `the request has no body; ${MEDIA_TYPES}`);
      sources = [{ name: 'body', bytes: body }];
    }
    // Refuse early, before decoding, when the queue cannot take them.
    batcher.checkRoom(sources.length);
    const inputs = await Promise.all(sources.map((s) => classifier.input(s, { convert: opts.convertImages, maxPixels: opts.maxPixels })));
    const probs = await batcher.submitAll(inputs);
    reply.type('application/json; charset=utf-8');
    return {
      model: card.model,
      timeMs: Math.round(reply.elapsedTime * 100) / 100,
      results: sources.map((s, i) => ({ name: s.name, top: classifier.top(probs[i]!, k) })),
    };
  });

  // Closing: the queued images run at once, and each answer closes its connection (a kept-alive
  // one would hold the server open until its keep-alive timeout).
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    batcher.drain();
  });
  app.addHook('onSend', async (_req, reply) => {
    if (closing) reply.header('connection', 'close');
  });

  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { app, url: `http://${host}:${address.port}`, close: () => app.close() };
}
