// The page of `resnet serve`: images chosen or dropped are classified on the server
// (POST v1/predict, one request per image, so the server batches them) or in this browser
// (onnxruntime-web on the server's ONNX export, v1/model.onnx), and each one's top-5 is
// shown as bars with the time it took.
'use strict';

const K = 5;
const $ = (id) => document.getElementById(id);
let model = null;
let session = null;

function token() {
  return $('token').value.trim();
}

function authHeaders(extra = {}) {
  const t = token();
  return t === '' ? extra : { ...extra, authorization: `Bearer ${t}` };
}

/** The server's JSON error message, or the status line. */
async function failure(response) {
  try {
    const body = await response.json();
    if (typeof body.message === 'string') return `${response.status}: ${body.message}`;
  } catch { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}

function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}

async function loadModel() {
  const r = await fetch('v1/model', { headers: authHeaders() });
  if (!r.ok) {
    setStatus(`Cannot read the model description: ${await failure(r)}`, true);
    if (r.status === 401) $('token').focus();
    return;
  }
  model = await r.json();
  const { height, width, channels } = model.input;
  $('model').textContent = `${model.model} trained on ${model.dataset}: ${model.numClasses} classes, ` +
    `${width}x${height} ${channels === 1 ? 'greyscale' : 'RGB'} input`;
  const p = model.preprocessing;
  $('preprocessing').textContent = `Both modes prepare an image the same way: resized to ${p.resize}, ` +
    `${channels === 1 ? 'converted to greyscale (Rec. 601 luma in the browser), ' : ''}divided by 255, ` +
    `then normalised with mean ${fmtList(p.mean)} and std ${fmtList(p.std)}. The browser resamples with its canvas, ` +
    'the server with libvips, so images not already of the model\'s size may score slightly differently.';
  setStatus('');
}

function fmtList(values) {
  return `[${values.map((v) => Number(v.toFixed(4))).join(', ')}]`;
}

function mode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

async function onnxSession() {
  if (session === null) {
    if (typeof ort === 'undefined') throw new Error('onnxruntime-web did not load (ort/ort.wasm.min.js)');
    ort.env.wasm.wasmPaths = new URL('ort/', location.href).href;
    ort.env.wasm.numThreads = 1;
    const r = await fetch('v1/model.onnx', { headers: authHeaders() });
    if (!r.ok) throw new Error(`cannot fetch the ONNX model: ${await failure(r)}`);
    session = await ort.InferenceSession.create(new Uint8Array(await r.arrayBuffer()), { executionProviders: ['wasm'] });
  }
  return session;
}

/** The image as the model's input, HWC floats: cover + centre crop, [grey,] / 255, normalised. */
async function preprocess(file) {
  const { height: h, width: w, channels: c } = model.input;
  const { mean, std } = model.preprocessing;
  const bitmap = await createImageBitmap(file, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  const scale = Math.max(w / bitmap.width, h / bitmap.height);
  const sw = w / scale;
  const sh = h / scale;
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, (bitmap.width - sw) / 2, (bitmap.height - sh) / 2, sw, sh, 0, 0, w, h);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const x = new Float32Array(h * w * c);
  for (let i = 0; i < h * w; i++) {
    if (c === 1) {
      const grey = Math.round(0.299 * rgba[i * 4] + 0.587 * rgba[i * 4 + 1] + 0.114 * rgba[i * 4 + 2]);
      x[i] = (grey / 255 - mean[0]) / std[0];
    } else {
      for (let k = 0; k < 3; k++) x[i * 3 + k] = (rgba[i * 4 + k] / 255 - mean[k]) / std[k];
    }
  }
  return x;
}

/** Softmax of the logits, then the k most probable classes (ties: the lower index), as the server answers. */
function topK(logits, k) {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  const row = exps.map((e, index) => ({ index, probability: e / sum }));
  row.sort((a, b) => b.probability - a.probability || a.index - b.index);
  return row.slice(0, k).map((r) => ({ class: model.classes[r.index], index: r.index, probability: r.probability }));
}

async function classifyInBrowser(file) {
  const s = await onnxSession();
  const start = performance.now();
  const x = await preprocess(file);
  const { height, width, channels } = model.input;
  const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x, [1, height, width, channels]) });
  const top = topK(out[s.outputNames[0]].data, K);
  return { top, latency: `${(performance.now() - start).toFixed(1)} ms in this browser (onnxruntime-web, WebAssembly)` };
}

async function classifyOnServer(file) {
  const start = performance.now();
  const r = await fetch(`v1/predict?k=${K}`, {
    method: 'POST', headers: authHeaders({ 'content-type': file.type || 'application/octet-stream' }), body: file,
  });
  if (!r.ok) throw new Error(await failure(r));
  const body = await r.json();
  const roundTrip = performance.now() - start;
  return { top: body.results[0].top, latency: `${roundTrip.toFixed(1)} ms round trip, ${body.timeMs.toFixed(1)} ms on the server` };
}

function element(tag, attrs = {}, text = '') {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== '') e.textContent = text;
  return e;
}

function showTop(list, top) {
  list.replaceChildren(...top.map((t) => {
    const li = element('li', { 'data-class': t.class, 'data-index': String(t.index), 'data-probability': String(t.probability) });
    const bar = element('span', { class: 'bar' });
    const fill = element('span');
    fill.style.width = `${(t.probability * 100).toFixed(2)}%`;
    bar.append(fill);
    li.append(element('span', { class: 'label' }, t.class), bar, element('span', { class: 'p' }, `${(t.probability * 100).toFixed(2)}%`));
    return li;
  }));
}

async function classify(file) {
  const where = mode();
  const card = element('article', { class: 'result', 'data-name': file.name, 'data-mode': where, 'data-state': 'pending' });
  const img = element('img', { alt: file.name });
  img.src = URL.createObjectURL(file);
  const body = element('div', { class: 'body' });
  const list = element('ol', { class: 'top' });
  const latency = element('p', { class: 'latency' }, where === 'server' ? 'sending…' : 'running in this browser…');
  body.append(element('h3', {}, `${file.name} (${where === 'server' ? 'server' : 'browser'})`), list, latency);
  card.append(img, body);
  $('results').prepend(card);
  try {
    const { top, latency: text } = where === 'server' ? await classifyOnServer(file) : await classifyInBrowser(file);
    showTop(list, top);
    latency.textContent = text;
    card.dataset.state = 'done';
  } catch (e) {
    latency.textContent = e instanceof Error ? e.message : String(e);
    latency.className = 'latency error';
    card.dataset.state = 'error';
  }
}

async function classifyAll(files) {
  if (model === null) await loadModel();
  if (model === null) return;
  await Promise.all(Array.from(files).filter((f) => f.type === '' || f.type.startsWith('image/')).map(classify));
}

$('files').addEventListener('change', (e) => {
  classifyAll(e.target.files);
  e.target.value = '';
});
const drop = $('drop');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  classifyAll(e.dataTransfer.files);
});
$('token').value = sessionStorage.getItem('resnet-serve-token') ?? '';
$('token').addEventListener('change', () => {
  sessionStorage.setItem('resnet-serve-token', token());
  session = null;
  loadModel();
});
loadModel();
