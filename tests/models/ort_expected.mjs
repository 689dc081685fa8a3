// Writes ONNX Runtime's outputs for each test folder: DIR/test_data_set_N/output_<j>.pb from input_<i>.pb.
// usage: node ort_expected.mjs ORT_PACKAGE_DIR DIR...   (ORT_PACKAGE_DIR holds node_modules/onnxruntime-node)
// Reads and writes float32 TensorProto messages with raw_data only.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [ortDir, ...dirs] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(ortDir), 'package.json'));
const ort = require('onnxruntime-node');

function readTensor(file) {
  const b = fs.readFileSync(file); let p = 0; const dims = []; let raw = null, dtype = 1;
  const varint = () => { let r = 0n, s = 0n; for (;;) { const c = b[p++]; r |= BigInt(c & 0x7f) << s; if (!(c & 0x80)) return r; s += 7n; } };
  while (p < b.length) {
    const key = Number(varint()), field = key >> 3, wt = key & 7;
    if (wt === 0) { const v = varint(); if (field === 1) dims.push(Number(v)); else if (field === 2) dtype = Number(v); }
    else if (wt === 2) { const len = Number(varint());
      if (field === 1) { const end = p + len; while (p < end) dims.push(Number(varint())); }
      else if (field === 9) raw = b.subarray(p, p + len);
      p += len; }
    else if (wt === 5) p += 4; else if (wt === 1) p += 8;
  }
  if (dtype !== 1 || !raw) throw new Error(`${file}: only float32 raw_data tensors are supported`);
  return new ort.Tensor('float32', new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length)), dims);
}

function varintBytes(n) { const out = []; let v = BigInt(n); do { let c = Number(v & 0x7fn); v >>= 7n; if (v) c |= 0x80; out.push(c); } while (v); return out; }

function writeTensor(file, name, tensor) {
  if (tensor.type !== 'float32') throw new Error(`${name}: only float32 outputs are written`);
  const parts = [];
  for (const d of tensor.dims) parts.push(Buffer.from([0x08, ...varintBytes(d)]));
  parts.push(Buffer.from([0x10, 0x01]));
  const nameBytes = Buffer.from(name, 'utf8');
  parts.push(Buffer.from([0x42, ...varintBytes(nameBytes.length)]), nameBytes);
  const raw = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  parts.push(Buffer.from([0x4a, ...varintBytes(raw.length)]), raw);
  fs.writeFileSync(file, Buffer.concat(parts));
}

for (const dir of dirs) {
  const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'), { intraOpNumThreads: 1, graphOptimizationLevel: 'disabled' });
  for (const set of fs.readdirSync(dir).filter(d => d.startsWith('test_data_set_')).sort()) {
    const feeds = {};
    session.inputNames.forEach((n, i) => { feeds[n] = readTensor(path.join(dir, set, `input_${i}.pb`)); });
    const out = await session.run(feeds);
    session.outputNames.forEach((n, j) => writeTensor(path.join(dir, set, `output_${j}.pb`), n, out[n]));
    console.log(`${dir}/${set}: ${session.outputNames.length} outputs written`);
  }
}
