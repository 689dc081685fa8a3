// ONNX Runtime side of the int8 agreement check (bench/run-int8.sh runs it).
// usage: node int8-agreement.mjs MODEL.onnx --dataset fashion-mnist|random [--count 1000] [--batch 50]
//        [--data-dir /usr/share/datasets/fashion-mnist] [--tinyops-argmax FILE] [--tinyops-scores FILE] [--threads 1]
// Runs MODEL in onnxruntime-node (CPU, graph optimizations 'all', like bench.mjs) on
//   fashion-mnist: the first COUNT test images (t10k-images-idx3-ubyte[.gz]), pixels / 255 as float32, [N,1,28,28];
//   random: COUNT deterministic pseudo-random inputs; element i of sample s (sample size S = product of the input's
//     dimensions after the batch) is value(s*S + i) with, in uint32 arithmetic,
//       h = n*0x9E3779B9; h ^= h>>>16; h *= 0x85EBCA6B; h ^= h>>>13; h *= 0xC2B2AE35; h ^= h>>>16; value = (h>>>8) / 2^24
//     (the same as TinyOps.Optimize.Quantization.PseudoRandomInputs).
// Takes the argmax of the first output per input; with --tinyops-argmax (one integer per line, from
// `tinyops eval MODEL --dataset ... --argmax-out FILE`) counts the inputs where the two argmaxes differ.
// With --tinyops-scores (the raw float32 first outputs, from --scores-out) also compares the scores themselves:
// inputs whose outputs are bit-identical, and the largest absolute difference.
// Prints one JSON line: count, disagreements, ORT accuracy (fashion-mnist), distinct argmax classes, score comparison.
import ort from 'onnxruntime-node';
import fs from 'node:fs';
import zlib from 'node:zlib';
import path from 'node:path';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def; };
const modelPath = args[0];
if (!modelPath || modelPath.startsWith('--')) { console.error('usage: node int8-agreement.mjs MODEL.onnx --dataset fashion-mnist|random [--count N] [--tinyops-argmax FILE]'); process.exit(1); }
const dataset = opt('dataset', 'fashion-mnist');
const count = Number(opt('count', 1000));
const batchOpt = Number(opt('batch', 50));
const threads = Number(opt('threads', 1));
const dataDir = opt('data-dir', process.env.TINYOPS_FASHION_MNIST ?? '/usr/share/datasets/fashion-mnist');
const tinyopsFile = opt('tinyops-argmax', null);
const scoresFile = opt('tinyops-scores', null);
const theirScores = scoresFile ? new Float32Array(new Uint8Array(fs.readFileSync(scoresFile)).buffer) : null;
let identical = 0, maxAbsDiff = 0, scoreOffset = 0;

const session = await ort.InferenceSession.create(modelPath, {
  intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
const inputName = session.inputNames[0];
const meta = session.inputMetadata?.find?.(m => m.name === inputName);

function readIdx(stem) {
  for (const f of [`${stem}.gz`, stem]) {
    const p = path.join(dataDir, f);
    if (!fs.existsSync(p)) continue;
    let b = fs.readFileSync(p);
    if (f.endsWith('.gz')) b = zlib.gunzipSync(b);
    const ndim = b[3];
    const dims = []; for (let i = 0; i < ndim; i++) dims.push(b.readUInt32BE(4 + 4 * i));
    return { dims, data: b.subarray(4 + 4 * ndim) };
  }
  throw new Error(`${dataDir}: missing ${stem}(.gz); install dataset-fashion-mnist or pass --data-dir`);
}

function value(n) {
  let h = Math.imul(n >>> 0, 0x9E3779B9);
  h ^= h >>> 16; h = Math.imul(h, 0x85EBCA6B);
  h ^= h >>> 13; h = Math.imul(h, 0xC2B2AE35);
  h ^= h >>> 16;
  return (h >>> 8) / 16777216;
}

let sampleShape, fill, labels = null;
if (dataset === 'fashion-mnist') {
  const img = readIdx('t10k-images-idx3-ubyte');
  labels = readIdx('t10k-labels-idx1-ubyte').data;
  sampleShape = [1, img.dims[1], img.dims[2]];
  const size = img.dims[1] * img.dims[2];
  if (count > img.dims[0]) throw new Error(`--count ${count} is more than the ${img.dims[0]} test images`);
  fill = (s, dst, off) => { for (let i = 0; i < size; i++) dst[off + i] = img.data[s * size + i] / 255; };
} else if (dataset === 'random') {
  const shape = meta?.shape;
  if (!shape || shape.slice(1).some(d => typeof d !== 'number' || d < 1)) throw new Error(`--dataset random needs the input's dimensions after the batch; got ${JSON.stringify(shape)}`);
  sampleShape = shape.slice(1);
  const size = sampleShape.reduce((a, c) => a * c, 1);
  fill = (s, dst, off) => { const base = (s * size) >>> 0; for (let i = 0; i < size; i++) dst[off + i] = value((base + i) >>> 0); };
} else throw new Error(`unknown --dataset '${dataset}'; use fashion-mnist or random`);

const fixedBatch = typeof meta?.shape?.[0] === 'number' && meta.shape[0] > 0 ? meta.shape[0] : null;
const batch = fixedBatch ?? batchOpt;
const size = sampleShape.reduce((a, c) => a * c, 1);
const argmax = new Int32Array(count);
for (let start = 0; start < count; start += batch) {
  const b = fixedBatch ?? Math.min(batch, count - start);
  const data = new Float32Array(b * size);
  for (let j = 0; j < b && start + j < count; j++) fill(start + j, data, j * size);
  const out = await session.run({ [inputName]: new ort.Tensor('float32', data, [b, ...sampleShape]) });
  const scores = out[session.outputNames[0]].data;
  const classes = scores.length / b;
  for (let j = 0; j < b && start + j < count; j++) {
    let arg = 0;
    for (let k = 1; k < classes; k++) if (scores[j * classes + k] > scores[j * classes + arg]) arg = k;
    argmax[start + j] = arg;
    if (theirScores) {
      let same = true;
      for (let k = 0; k < classes; k++) {
        const a = scores[j * classes + k], t = theirScores[scoreOffset + k];
        if (a !== t) { same = false; maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a - t)); }
      }
      if (same) identical++;
      scoreOffset += classes;
    }
  }
}
let correct = null;
if (labels) { correct = 0; for (let i = 0; i < count; i++) if (argmax[i] === labels[i]) correct++; }
let disagreements = null; const firstDisagreements = [];
if (tinyopsFile) {
  const theirs = fs.readFileSync(tinyopsFile, 'utf8').trim().split(/\s+/).map(Number);
  if (theirs.length !== count) throw new Error(`${tinyopsFile} has ${theirs.length} argmax values, expected ${count}`);
  disagreements = 0;
  for (let i = 0; i < count; i++) if (theirs[i] !== argmax[i]) { disagreements++; if (firstDisagreements.length < 10) firstDisagreements.push(i); }
}
if (theirScores && theirScores.length !== scoreOffset) throw new Error(`${scoresFile} has ${theirScores.length} scores, expected ${scoreOffset}`);
console.log(JSON.stringify({ peer: 'onnxruntime-node', version: ort.env.versions?.common ?? null, model: modelPath, dataset, count,
  disagreements, first_disagreements: firstDisagreements, ort_accuracy: correct === null ? null : correct / count,
  distinct_argmax: new Set(argmax).size,
  identical_scores: theirScores ? identical : null, max_abs_score_diff: theirScores ? maxAbsDiff : null }));
