// `resnet serve` end to end: a resnet20 trained by `resnet train` on a small image folder,
// served by the real command in a child process on a free port. Its answers must equal
// `resnet predict`'s for the same files; every bad request must get its status and a JSON
// message, with the server still answering afterwards; concurrent requests must share
// batches; a full queue answers 503; SIGTERM finishes the requests in flight and exits 0.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Rng } from '../src/tensor/random.js';
import { Tensor } from '../src/tensor/tensor.js';
import { ImageClassifier } from '../src/train/classify.js';
import { loadModelFile } from '../src/train/model-file.js';
import { softmaxRows } from '../src/train/probabilities.js';
import { runCli, startCli } from './helpers/cli.js';
import { solid, tempDir, writeImage } from './helpers/data-files.js';
import { runOnnx } from './helpers/onnx-run.js';
import { pngBomb } from './helpers/png-bomb.js';

interface Score {
  class: string;
  index: number;
  probability: number;
}

interface Reply {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

const CLASSES = ['blue', 'green', 'red'];
const TOKEN = 'test-token-1234';
/** The body limit of the main server: small, so a too-large body fits in the socket buffers. */
const MAX_BODY = 64 * 1024;

/** An RGB image of `h` x `w` pixels around `colour`, with noise, so the model's answers are not all 0 and 1. */
function noisy(rng: Rng, h: number, w: number, colour: readonly number[]): Uint8Array {
  return Uint8Array.from({ length: h * w * 3 }, (_, i) => Math.max(0, Math.min(255, Math.round(colour[i % 3]! + (rng.uniform() - 0.5) * 200))));
}

async function request(url: string, init: RequestInit = {}): Promise<Reply> {
  const r = await fetch(url, init);
  const text = await r.text();
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${init.method ?? 'GET'} ${url}: ${r.status} ${text}`);
  return { status: r.status, headers: r.headers, body: JSON.parse(text) as Record<string, unknown> };
}

function imageBody(bytes: Uint8Array, type = 'image/png', token: string | null = TOKEN): RequestInit {
  const body = new Uint8Array(bytes);
  const headers: Record<string, string> = { 'content-type': type };
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  return { method: 'POST', headers, body };
}

/** The server's answer is `resnet predict`'s: the same classes in the same order, probabilities within 1e-5. */
function sameTop(got: unknown, want: Score[], what: string): void {
  const top = got as Score[];
  assert.deepEqual(top.map((t) => [t.class, t.index]), want.map((t) => [t.class, t.index]), what);
  top.forEach((t, i) => assert.ok(Math.abs(t.probability - want[i]!.probability) <= 1e-5,
    `${what}: ${t.class} ${t.probability}, resnet predict says ${want[i]!.probability}`));
}

function results(reply: Reply): { name: string; top: Score[] }[] {
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return reply.body['results'] as { name: string; top: Score[] }[];
}

/** The value of one sample of a Prometheus text exposition (0 when absent). */
function sample(metrics: string, name: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

function startServer(model: string, args: readonly string[]): Promise<{ url: string; proc: ReturnType<typeof startCli> }> {
  const proc = startCli(['serve', model, '--port', '0', ...args]);
  return proc.waitForStdout(/ at (http:\/\/\S+)\n/).then((out) => ({ url: / at (http:\/\/\S+)\n/.exec(out)![1]!, proc }));
}

describe('resnet serve', { timeout: 120_000 }, () => {
  const root = tempDir('serve');
  const runDir = join(root, 'run');
  const files = { png: join(root, 'probe.png'), jpg: join(root, 'probe.jpg'), other: join(root, 'other.png'), grey: join(root, 'grey.png') };
  let expected: Record<string, Score[]> = {};
  let main: { url: string; proc: ReturnType<typeof startCli> } | null = null;

  before(async () => {
    const rng = new Rng(7);
    const colours = [[40, 40, 180], [40, 180, 40], [180, 40, 40]];
    for (const [c, name] of CLASSES.entries()) {
      for (let i = 0; i < 8; i++) await writeImage(join(root, 'train', name, `${i}.png`), noisy(rng, 12, 12, colours[c]!), 12, 12, 3);
      await writeImage(join(root, 'test', name, 't.png'), noisy(rng, 12, 12, colours[c]!), 12, 12, 3);
    }
    // Of another size than the model's 12x12, so the server resizes as predict does.
    await writeImage(files.png, noisy(rng, 20, 15, [110, 110, 60]), 20, 15, 3);
    await writeImage(files.jpg, noisy(rng, 16, 16, [60, 110, 110]), 16, 16, 3, 'jpeg');
    await writeImage(files.other, noisy(rng, 12, 12, [150, 60, 60]), 12, 12, 3);
    await writeImage(files.grey, solid(12, 12, 1, [90]), 12, 12, 1);
    const train = runCli(['train', '--dataset', 'folder', '--data', root, '--epochs', '2', '--batch-size', '8', '--lr', '0.02',
      '--out', root, '--name', 'run', '--no-progress']);
    assert.equal(train.status, 0, train.stderr);
    const predict = runCli(['predict', runDir, files.png, files.jpg, files.other, '--top-k', '5', '--json']);
    assert.equal(predict.status, 0, predict.stderr);
    const answers = JSON.parse(predict.stdout) as { file: string; top: Score[] }[];
    expected = Object.fromEntries(answers.map((a) => [a.file, a.top]));
    // A model whose every answer is 1 or 0 would make the comparisons below weak.
    assert.ok(answers.every((a) => a.top[0]!.probability < 0.99), `degenerate model: ${predict.stdout}`);
    main = await startServer(runDir, ['--token', TOKEN, '--max-wait-ms', '50', '--max-body', String(MAX_BODY)]);
  });

  after(() => {
    if (main && main.proc.child.exitCode === null) main.proc.child.kill('SIGKILL');
  });

  /** A good request, after each bad one: the server still answers, and still right. */
  async function stillServing(): Promise<void> {
    const r = await request(`${main!.url}/v1/predict`, imageBody(readFileSync(files.png)));
    sameTop(results(r)[0]!.top, expected[files.png]!, 'a good request after a bad one');
  }

  it('answers one image with the top-k of resnet predict for the same file', async () => {
    const url = `${main!.url}/v1/predict`;
    const png = await request(url, imageBody(readFileSync(files.png)));
    assert.equal(png.body['model'], 'resnet20');
    assert.equal(typeof png.body['timeMs'], 'number');
    const [only, ...rest] = results(png);
    assert.equal(rest.length, 0);
    assert.equal(only!.top.length, 3, 'k defaults to 5, and the model has 3 classes');
    sameTop(only!.top, expected[files.png]!, 'PNG');
    sameTop(results(await request(url, imageBody(readFileSync(files.jpg), 'image/jpeg')))[0]!.top, expected[files.jpg]!, 'JPEG');
    sameTop(results(await request(url, imageBody(readFileSync(files.other), 'application/octet-stream')))[0]!.top, expected[files.other]!, 'octet-stream');
    const k2 = results(await request(`${url}?k=2`, imageBody(readFileSync(files.png))))[0]!.top;
    sameTop(k2, expected[files.png]!.slice(0, 2), '?k=2');
  });

  it('answers a multipart request of three images, in order, each as resnet predict does', async () => {
    const form = new FormData();
    for (const f of [files.other, files.png, files.jpg]) form.append('images', new Blob([readFileSync(f)]), f.slice(root.length + 1));
    form.append('note', 'fields are ignored');
    const r = results(await request(`${main!.url}/v1/predict?k=3`, { method: 'POST', body: form, headers: { authorization: `Bearer ${TOKEN}` } }));
    assert.deepEqual(r.map((x) => x.name), ['other.png', 'probe.png', 'probe.jpg']);
    sameTop(r[0]!.top, expected[files.other]!, 'part 1');
    sameTop(r[1]!.top, expected[files.png]!, 'part 2');
    sameTop(r[2]!.top, expected[files.jpg]!, 'part 3');
  });

  it('describes the model, and answers /health', async () => {
    const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
    const model = await request(`${main!.url}/v1/model`, auth);
    assert.equal(model.status, 200);
    const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')) as { mean: number[]; std: number[] };
    assert.deepEqual(model.body['classes'], CLASSES);
    assert.deepEqual(model.body['input'], { height: 12, width: 12, channels: 3 });
    assert.deepEqual((model.body['architecture'] as { name: string }).name, 'resnet20');
    const pre = model.body['preprocessing'] as { mean: number[]; std: number[]; scale: number };
    assert.deepEqual([pre.mean, pre.std, pre.scale], [config.mean, config.std, 1 / 255]);
    const health = await request(`${main!.url}/health`);
    assert.deepEqual([health.status, health.body['status']], [200, 'ok']);
  });

  it('refuses a missing or wrong bearer token with 401, and takes the right one', async () => {
    const png = readFileSync(files.png);
    for (const [token, message] of [[null, /^missing bearer token/], ['wrong-token', /^wrong bearer token$/]] as const) {
      for (const r of [await request(`${main!.url}/v1/predict`, imageBody(png, 'image/png', token)),
        await request(`${main!.url}/v1/model`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } })]) {
        assert.equal(r.status, 401);
        assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="resnet"');
        assert.match(r.body['message'] as string, message);
      }
    }
    const basic = await request(`${main!.url}/metrics`, { headers: { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` } });
    assert.deepEqual([basic.status, basic.body['message']], [401, 'the Authorization header is not a bearer token: send "Authorization: Bearer <token>"']);
    await stillServing();
  });

  it('serves the page and onnxruntime-web to anyone, the ONNX model only with the token, and answers as /v1/predict', async () => {
    const page = await fetch(`${main!.url}/`);
    assert.deepEqual([page.status, page.headers.get('content-type')], [200, 'text/html; charset=utf-8']);
    assert.match(page.headers.get('content-security-policy') ?? '', /^default-src 'self'; script-src 'self' 'wasm-unsafe-eval'/);
    assert.match(await page.text(), /<script src="page\/page\.js" defer><\/script>/);
    for (const [path, type] of [['/page/page.js', 'text/javascript; charset=utf-8'], ['/page/page.css', 'text/css; charset=utf-8'],
      ['/ort/ort.wasm.min.js', 'text/javascript; charset=utf-8'], ['/ort/ort-wasm-simd-threaded.mjs', 'text/javascript; charset=utf-8'],
      ['/ort/ort-wasm-simd-threaded.wasm', 'application/wasm']] as const) {
      const r = await fetch(`${main!.url}${path}`);
      assert.deepEqual([r.status, r.headers.get('content-type')], [200, type], path);
      assert.ok((await r.arrayBuffer()).byteLength > 1000, `${path} has content`);
    }
    // Only the page's files and onnxruntime-web's browser builds, nothing beside them.
    for (const path of ['/page/..%2F..%2Fserver.ts', '/page/nothing.js', '/ort/..%2Fpackage.json', '/ort/ort.node.min.js', '/ort/ort.min.js.map']) {
      const r = await request(`${main!.url}${path}`);
      assert.deepEqual([r.status, r.body['code']], [404, 'not_found'], path);
    }
    const anonymous = await request(`${main!.url}/v1/model.onnx`);
    assert.deepEqual([anonymous.status, anonymous.body['code']], [401, 'unauthorized']);

    const r = await fetch(`${main!.url}/v1/model.onnx`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.deepEqual([r.status, r.headers.get('content-type')], [200, 'application/octet-stream']);
    const onnx = new Uint8Array(await r.arrayBuffer());
    // The export takes the server's own preprocessed input (NHWC) and gives resnet predict's probabilities.
    const classifier = new ImageClassifier(loadModelFile(runDir));
    const x = await classifier.input(files.png);
    const logits = await runOnnx(onnx, new Tensor(x, [1, 12, 12, 3]), 'NHWC');
    assert.deepEqual(logits.dims, [1, 3]);
    const probs = softmaxRows(logits.data, 1, 3);
    sameTop(classifier.top(probs, 5), expected[files.png]!, 'the ONNX model');
    await stillServing();
  });

  it('answers every bad request with its status and a JSON message, and keeps serving', async () => {
    const png = readFileSync(files.png);
    const multipart = (parts: [string, Uint8Array][]): RequestInit => {
      const form = new FormData();
      for (const [name, bytes] of parts) form.append('image', new Blob([new Uint8Array(bytes)]), name);
      return { method: 'POST', body: form, headers: { authorization: `Bearer ${TOKEN}` } };
    };
    const textOnly = new FormData();
    textOnly.append('image', 'not a file');
    // What, the path, the request, the status, the message.
    const cases: [string, string, RequestInit, number, RegExp][] = [
      ['text', '/v1/predict', imageBody(Buffer.from('a shoe'), 'text/plain'), 415, /^Content-Type text\/plain is not an image; send the image bytes as image\/png/],
      ['JSON', '/v1/predict', imageBody(Buffer.from('{"image": 1}'), 'application/json'), 415, /^Content-Type application\/json is not an image/],
      ['not an image', '/v1/predict', imageBody(Buffer.from('this is not a PNG at all')), 400, /^body: cannot decode the image \(.+\); expected a PNG or JPEG file$/],
      ['a truncated PNG', '/v1/predict', imageBody(png.subarray(0, 100)), 400, /^body: cannot decode the image/],
      ['an empty body', '/v1/predict', imageBody(new Uint8Array(0)), 400, /^the request has no body; send the image bytes/],
      ['a body over --max-body', '/v1/predict', imageBody(new Uint8Array(MAX_BODY + 40_000)), 413, new RegExp(`^the request body is larger than the limit of ${MAX_BODY} bytes`)],
      ['a PNG bomb', '/v1/predict', imageBody(pngBomb()), 413, /^body: image is 50000x50000 = 2500000000 pixels, more than the limit of 40000000; use a smaller image$/],
      ['a greyscale image for an RGB model', '/v1/predict', imageBody(readFileSync(files.grey)), 400, /^body: image has 1 channel \(greyscale\), expected 3 \(RGB\)/],
      ['a bad k', '/v1/predict?k=many', imageBody(png), 400, /^k must be a positive integer \(the number of classes to return\), got "many"$/],
      ['multipart with a bad part', '/v1/predict', multipart([['ok.png', png], ['broken.png', png.subarray(0, 60)]]), 400, /^broken\.png: cannot decode the image/],
      ['multipart over --max-body in all', '/v1/predict', multipart([['a.png', new Uint8Array(40_000)], ['b.png', new Uint8Array(40_000)]]), 413,
        new RegExp(`^the request body is larger than the limit of ${MAX_BODY} bytes`)],
      ['multipart with a bomb', '/v1/predict', multipart([['bomb.png', pngBomb()]]), 413, /^bomb\.png: image is 50000x50000/],
      ['multipart without a file', '/v1/predict', { method: 'POST', body: textOnly, headers: { authorization: `Bearer ${TOKEN}` } }, 400, /^the multipart request holds no file part/],
      ['malformed multipart', '/v1/predict', imageBody(Buffer.from('--nope\r\n'), 'multipart/form-data; boundary=xyz'), 400, /^the multipart body cannot be parsed/],
      ['an unknown route', '/v2/predict', imageBody(png), 404, /^no route POST \/v2\/predict; the routes are/],
    ];
    for (const [what, path, init, status, message] of cases) {
      const r = await request(`${main!.url}${path}`, init);
      assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body['statusCode'], status, what);
      assert.match(r.body['message'] as string, message, what);
      await stillServing();
    }
    const health = await request(`${main!.url}/health`);
    assert.equal(health.status, 200);
  });

  it('gathers concurrent requests into batches, with the answers of single ones, and counts them in /metrics', async () => {
    const bytes = [files.png, files.jpg, files.other].map((f) => readFileSync(f));
    const names = [files.png, files.jpg, files.other];
    const replies = await Promise.all(Array.from({ length: 24 }, (_, i) =>
      request(`${main!.url}/v1/predict`, imageBody(bytes[i % 3]!, 'application/octet-stream'))));
    replies.forEach((r, i) => sameTop(results(r)[0]!.top, expected[names[i % 3]!]!, `concurrent request ${i}`));
    const r = await fetch(`${main!.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
    const metrics = await r.text();
    const batches = sample(metrics, 'resnet_batch_size_count');
    const single = sample(metrics, 'resnet_batch_size_bucket{le="1"}');
    assert.ok(batches - single > 0, `no batch of more than one image among ${batches}:\n${metrics}`);
    const ok = sample(metrics, 'resnet_http_requests_total{method="POST",route="/v1/predict",status="200"}');
    assert.ok(ok >= 24 + 4 + 1, `${ok} successful predictions counted`);
    assert.ok(sample(metrics, 'resnet_http_requests_total{method="POST",route="/v1/predict",status="401"}') >= 2);
    assert.ok(sample(metrics, 'resnet_http_requests_total{method="POST",route="/v1/predict",status="413"}') >= 3);
    assert.ok(sample(metrics, 'resnet_http_request_duration_seconds_count{route="/v1/predict"}') >= ok);
    assert.equal(sample(metrics, 'resnet_queue_depth'), 0);
  });

  it('refuses a port in use and bad flags with one line and exit status 2', () => {
    const port = new URL(main!.url).port;
    for (const [args, message] of [
      [['--port', port], new RegExp(`^resnet: --port ${port}: the port is in use on 127\\.0\\.0\\.1; choose another port, or 0 for any free one$`)],
      [['--max-batch', '0'], /^resnet: --max-batch must be an integer from 1 to 4096, got "0"$/],
      [['--max-body', '10XB'], /^resnet: --max-body must be a size from 1 byte to 2GiB such as 10MB, 512KB or 1048576, got "10XB"$/],
      [['--port', '70000'], /^resnet: --port must be an integer from 0 to 65535, got "70000"$/],
      [['--bogus-flag'], /^resnet: unknown option '--bogus-flag'; see: resnet serve --help$/],
    ] as const) {
      const r = runCli(['serve', runDir, ...args]);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr.trimEnd(), message);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    }
  });

  it('answers 503 with Retry-After when the queue is full; SIGTERM runs the queued requests, then exits 0', { timeout: 60_000 }, async () => {
    // Batches of 64 after an hour's wait: the two queued images can run within the test's
    // time only because the server stops.
    const busy = await startServer(runDir, ['--max-batch', '64', '--max-wait-ms', '3600000', '--max-queue', '2']);
    try {
      const url = `${busy.url}/v1/predict`;
      const queued = [files.png, files.other].map((f) => request(url, imageBody(readFileSync(f), 'image/png', null)));
      for (let tries = 0; ; tries++) {
        if (sample(await (await fetch(`${busy.url}/metrics`)).text(), 'resnet_queue_depth') === 2) break;
        assert.ok(tries < 2000, 'the two requests never reached the queue');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const full = await request(url, imageBody(readFileSync(files.jpg), 'image/png', null));
      assert.equal(full.status, 503, JSON.stringify(full.body));
      assert.equal(full.headers.get('retry-after'), '1');
      assert.equal(full.body['message'], 'the server is busy: the queue is full (2 of 2 images waiting); try again later');
      assert.equal((await request(`${busy.url}/health`)).status, 200);
      busy.proc.child.kill('SIGTERM');
      const [a, b] = await Promise.all(queued);
      sameTop(results(a!)[0]!.top, expected[files.png]!, 'queued request 1, answered on SIGTERM');
      sameTop(results(b!)[0]!.top, expected[files.other]!, 'queued request 2, answered on SIGTERM');
      const done = await busy.proc.done;
      assert.deepEqual([done.status, done.signal], [0, null], done.stderr);
      assert.equal(done.stderr, 'resnet serve: SIGTERM: finishing the requests in flight\nresnet serve: stopped\n');
    } finally {
      if (busy.proc.child.exitCode === null) busy.proc.child.kill('SIGKILL');
    }
  });

  it('stops on SIGTERM when idle, exit status 0', async () => {
    main!.proc.child.kill('SIGTERM');
    const done = await main!.proc.done;
    assert.deepEqual([done.status, done.signal], [0, null], done.stderr);
  });
});
