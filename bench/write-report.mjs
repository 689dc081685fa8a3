// Writes docs/benchmarks.md from the JSON lines bench/run-peer.sh collected.
// usage: node write-report.mjs RESULTS.jsonl OUT.md key=value...
// Each results line: {"config": index, "round": n, "side": "ort"|"tinyops", "result": <bench JSON or {"error"}>}.
// The layout is fixed (same sections, rows and columns on every run) so reruns diff cleanly.
import fs from 'node:fs';

const [resultsFile, outFile, ...kv] = process.argv.slice(2);
const meta = Object.fromEntries(kv.map(s => { const i = s.indexOf('='); return [s.slice(0, i), s.slice(i + 1)]; }));
const configs = meta.configs.split(';').filter(Boolean).map(s => {
  const [label, path, batch, threads, iters, warmup] = s.split('|');
  return { label, path, batch: +batch, threads: +threads, iters: +iters, warmup: +warmup };
});
const lines = fs.readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l));

const median = xs => { if (!xs.length) return null; const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const ok = (c, side) => lines.filter(l => l.config === c && l.side === side && !l.result.error).map(l => l.result);
const errors = (c, side) => lines.filter(l => l.config === c && l.side === side && l.result.error).map(l => l.result.error);
const fmt = (v, d = 0) => v == null || Number.isNaN(v) ? '—' : v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const us = v => v == null ? '—' : fmt(v, v < 1000 ? 1 : 0);

const rows = configs.map((cfg, i) => {
  const o = ok(i, 'ort'), t = ok(i, 'tinyops');
  const r = {
    cfg, nOrt: o.length, nT: t.length, errOrt: errors(i, 'ort'), errT: errors(i, 'tinyops'),
    tP50: median(t.map(x => x.p50_us)), tP90: median(t.map(x => x.p90_us)), tP99: median(t.map(x => x.p99_us)),
    oP50: median(o.map(x => x.p50_us)), oP90: median(o.map(x => x.p90_us)), oP99: median(o.map(x => x.p99_us)),
    tLoad: median(t.map(x => x.load_ms)), tLoadAgain: median(t.map(x => x.load_again_ms)), oLoad: median(o.map(x => x.load_us / 1000)),
    arena: t.length ? Math.max(...t.map(x => x.arena_bytes)) : null,
    scratch: t.length ? Math.max(...t.map(x => x.scratch_bytes)) : null,
    alloc: t.length ? Math.max(...t.map(x => x.alloc_bytes_per_inference)) : null,
    ortVersion: o[0]?.version ?? null, runtime: t[0]?.runtime ?? null,
  };
  // Outputs: largest absolute difference over the first values both print (same input on both sides).
  if (o.length && t.length) {
    const a = o.at(-1).output_head, b = t.at(-1).output_head;
    const n = Math.min(a.length, b.length);
    let d = 0; for (let k = 0; k < n; k++) d = Math.max(d, Math.abs(a[k] - b[k]));
    r.outDiff = n ? d : null;
    r.outScale = n ? Math.max(...a.slice(0, n).map(Math.abs)) : null;
  }
  r.ratio = r.tP50 != null && r.oP50 != null ? r.tP50 / r.oP50 : null;
  r.target = cfg.threads !== 1 ? null : cfg.label.startsWith('fmnist') ? 0.8 : 1.2;
  return r;
});

const ortVersion = rows.find(r => r.ortVersion)?.ortVersion ?? 'unknown';
const runtime = rows.find(r => r.runtime)?.runtime ?? 'unknown';
const mark = (v, target, lower = true) => v == null || target == null ? '—' : (lower ? v <= target : v >= target) ? 'yes' : '**no**';
const name = c => `${c.label}`;
const out = [];
const p = s => out.push(s);

p('# Benchmarks');
p('');
p(`Measured ${meta.date} at commit \`${meta.commit}\` by \`bench/run-peer.sh\`, which runs TinyOps and ONNX Runtime ${ortVersion}`);
p('(onnxruntime-node, CPU) in the same run. Rerun the script to refresh this file; the layout stays the same, the');
p('figures change. The machine is shared and noisy (see Method): differences under about 10% are not meaningful.');
p('');
p('## Latency: TinyOps against ONNX Runtime (p50, same run)');
p('');
p('| model | batch | threads | TinyOps p50 (µs) | ORT p50 (µs) | TinyOps / ORT | target | met |');
p('|---|---:|---:|---:|---:|---:|---:|:---:|');
for (const r of rows)
  p(`| ${name(r.cfg)} | ${r.cfg.batch} | ${r.cfg.threads} | ${us(r.tP50)} | ${us(r.oP50)} | ${r.ratio == null ? '—' : fmt(r.ratio, 2) + 'x'} | ${r.target == null ? '—' : '≤ ' + fmt(r.target, 1) + 'x'} | ${mark(r.ratio, r.target)} |`);
p('');
p('TinyOps / ORT is TinyOps\' p50 divided by ONNX Runtime\'s: below 1 means TinyOps is faster.');
p('');

const mb1 = rows.find(r => r.cfg.label === 'mobilenet_v2' && r.cfg.threads === 1);
const mb2 = rows.find(r => r.cfg.label === 'mobilenet_v2' && r.cfg.threads === 2);
const tSpeedOfMedians = mb1?.tP50 && mb2?.tP50 ? mb1.tP50 / mb2.tP50 : null;
const oSpeedOfMedians = mb1?.oP50 && mb2?.oP50 ? mb1.oP50 / mb2.oP50 : null;
// Paired: each round's own 1-thread p50 over its 2-thread p50, for one runtime (the two runs are seconds apart in a
// round, so a slow or fast spell of the host that lasts minutes weighs on both); the median over the rounds and the range.
const paired = side => {
  if (!mb1 || !mb2) return { median: null, lo: null, hi: null };
  const i1 = configs.indexOf(mb1.cfg), i2 = configs.indexOf(mb2.cfg);
  const at = (i, r) => lines.find(l => l.config === i && l.round === r && l.side === side && !l.result.error)?.result.p50_us;
  const ratios = [...new Set(lines.map(l => l.round))].map(r => [at(i1, r), at(i2, r)]).filter(([a, b]) => a && b).map(([a, b]) => a / b);
  return { median: median(ratios), lo: ratios.length ? Math.min(...ratios) : null, hi: ratios.length ? Math.max(...ratios) : null, n: ratios.length };
};
const tPaired = paired('tinyops'), oPaired = paired('ort');
const tSpeed = tPaired.median;
const pairedCell = q => q.median == null ? '—' : `${fmt(q.median, 2)}x (${fmt(q.lo, 2)}-${fmt(q.hi, 2)}x)`;
p('## Threads: MobileNetV2, 2 threads against 1');
p('');
p('| runtime | p50, 1 thread (µs) | p50, 2 threads (µs) | speedup of the medians | paired speedup (range over rounds) | target | met |');
p('|---|---:|---:|---:|---:|---:|:---:|');
p(`| TinyOps | ${us(mb1?.tP50)} | ${us(mb2?.tP50)} | ${tSpeedOfMedians == null ? '—' : fmt(tSpeedOfMedians, 2) + 'x'} | ${pairedCell(tPaired)} | ≥ 1.6x | ${mark(tSpeed, 1.6, false)} |`);
p(`| ONNX Runtime | ${us(mb1?.oP50)} | ${us(mb2?.oP50)} | ${oSpeedOfMedians == null ? '—' : fmt(oSpeedOfMedians, 2) + 'x'} | ${pairedCell(oPaired)} | — | — |`);
p('');
p('*Speedup of the medians* divides the median 1-thread p50 by the median 2-thread p50; *paired* is the median of each');
p('round\'s own ratio (the 1- and 2-thread runs of a round are seconds apart, so a slow or fast spell of the host that spans');
p('minutes weighs on both sides of a ratio, where the medians may come from different spells). The target is read on');
p('the paired figure.');
p('');
const hostScaling = (meta.host_scaling || '').split(';').filter(Boolean).map(Number);
if (hostScaling.length) {
  p(`What the host allowed: two threads of independent 512-bit FMA loops ran ${fmt(median(hostScaling), 2)}x one thread`);
  p(`(median of ${hostScaling.length} samples, one a round right after the two-thread runs; ${fmt(Math.min(...hostScaling), 2)}x to`);
  p(`${fmt(Math.max(...hostScaling), 2)}x; \`bench/TinyOps.Bench.Kernels peak --scaling\`). Two idle cores give 2.0x; hyperthreads of one core`);
  p('or a host under load give less, for every runtime alike.');
  p('');
}

const runnerLoads = Object.fromEntries((meta.runner_loads || '').split(';').filter(Boolean).map(s => s.split(' ')));
p('## Load time, memory and allocation');
p('');
p('| model | batch | threads | TinyOps load (ms) | TinyOps load, again (ms) | tinyops-run load (ms) | ORT session creation (ms) | load met | planned arena (bytes) | kernel scratch (bytes) | allocated / inference (bytes) |');
p('|---|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|');
for (const r of rows) {
  const rl = runnerLoads[r.cfg.label];
  const rlv = rl && rl !== 'failed' ? +rl : null;
  p(`| ${name(r.cfg)} | ${r.cfg.batch} | ${r.cfg.threads} | ${fmt(r.tLoad, 1)} | ${fmt(r.tLoadAgain, 1)} | ${fmt(rlv, 1)} | ${fmt(r.oLoad, 1)} | ${mark(rlv, r.oLoad)} | ${fmt(r.arena)} | ${fmt(r.scratch)} | ${fmt(r.alloc, 1)} |`);
}
p('');
p('- *TinyOps load*: `InferenceSession.Load` in a fresh `tinyops bench` process (reading, validating, compiling and');
p('  planning at batch 1), including the JIT compilation of the loader on first use. *Load, again*: the same load');
p('  repeated in that process, i.e. the loader\'s own work. *tinyops-run load*: the shipped runner build');
p('  (ReadyToRun, see below), a fresh process per model as a device starts it, the median of one start per round, each taken right after ORT\'s session for that model. *ORT session');
p('  creation*: `InferenceSession.create` in bench.mjs (graph optimizations at level "all"), after the native library');
p('  is loaded. "load met" compares the shipped runner (what a device runs) with ORT; the JIT-compiled CLI\'s first');
p('  load in a fresh process is shown beside it and judged separately below.');
p('- *Planned arena*: activation memory planned for this batch. *Kernel scratch*: extra buffers kernels hold.');
p('- *Allocated / inference*: `GC.GetAllocatedBytesForCurrentThread()` across the timed runs divided by the number');
p('  of runs, after warm-up; the target is 0 (the worst round is shown).');
p('');
p('## Tail latency and output check');
p('');
p('| model | batch | threads | TinyOps p90 (µs) | TinyOps p99 (µs) | ORT p90 (µs) | ORT p99 (µs) | max abs difference of the first outputs | largest first output |');
p('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows)
  p(`| ${name(r.cfg)} | ${r.cfg.batch} | ${r.cfg.threads} | ${us(r.tP90)} | ${us(r.tP99)} | ${us(r.oP90)} | ${us(r.oP99)} | ${r.outDiff == null ? '—' : r.outDiff.toExponential(1)} | ${r.outScale == null ? '—' : r.outScale.toExponential(1)} |`);
p('');
p('Both runtimes get the same input, so the first ten values of the first output should agree to float32 rounding.');
p('');
const failed = rows.filter(r => r.errOrt.length || r.errT.length || r.nOrt === 0 || r.nT === 0);
if (failed.length) {
  p('### Failed runs');
  p('');
  for (const r of failed) {
    if (r.errT.length) p(`- ${name(r.cfg)} batch ${r.cfg.batch} threads ${r.cfg.threads}, TinyOps: ${r.errT[0]}`);
    if (r.errOrt.length) p(`- ${name(r.cfg)} batch ${r.cfg.batch} threads ${r.cfg.threads}, ORT: ${r.errOrt[0]}`);
  }
  p('');
}

const mbytes = b => b ? (b / 1e6).toFixed(2) + ' MB' : '—';
p('## Minimal runner size (`tinyops-run`, linux-x64)');
p('');
p('| build | bytes | size | target | met |');
p('|---|---:|---:|---:|:---:|');
p(`| trimmed, self-contained, single-file | ${fmt(+meta.runner_plain || null)} | ${mbytes(+meta.runner_plain)} | < 20 MB | ${mark(+meta.runner_plain || null, 20e6)} |`);
p(`| the same + ReadyToRun + compressed bundle (shipped) | ${fmt(+meta.runner_shipped || null)} | ${mbytes(+meta.runner_shipped)} | < 20 MB | ${mark(+meta.runner_shipped || null, 20e6)} |`);
p('');
p('`bench/publish-runner.sh` builds both: `dotnet publish src/TinyOps.Run -c Release -r linux-x64 --self-contained');
p('-p:PublishSingleFile=true -p:PublishTrimmed=true`, and for the shipped one also `-p:PublishReadyToRun=true');
p('-p:EnableCompressionInSingleFile=true`. Trimming drops the framework\'s precompiled code, so the plain build JITs');
p('everything at start (a few hundred ms before the first model loads); ReadyToRun puts it back. NativeAOT is not');
p('available here. For scale: ONNX Runtime\'s native library alone is about 46 MB.');
p('');

p('## Issue 4 acceptance, as measured here');
p('');
const all = (pred, rs) => rs.length && rs.every(r => r.ratio != null) ? (rs.every(pred) ? 'met' : 'not met') : 'not measured';
const fm = rows.filter(r => r.cfg.label.startsWith('fmnist'));
const big = rows.filter(r => !r.cfg.label.startsWith('fmnist') && r.cfg.threads === 1);
const loadRows = rows.filter(r => r.cfg.threads === 1);
p(`- Fashion-MNIST CNN and MLP, batch 1 and 8, at most 0.8x ORT: **${all(r => r.ratio <= 0.8, fm)}** (${fm.map(r => `${r.cfg.label} b${r.cfg.batch} ${fmt(r.ratio, 2)}x`).join(', ')}).`);
p(`- MobileNetV2, ResNet-18, SqueezeNet 1.1 at batch 1, at most 1.2x ORT: **${all(r => r.ratio <= 1.2, big)}** (${big.map(r => `${r.cfg.label} ${fmt(r.ratio, 2)}x`).join(', ')}).`);
p(`- Two threads at least 1.6x on MobileNetV2: **${tSpeed == null ? 'not measured' : tSpeed >= 1.6 ? 'met' : 'not met'}** (${tSpeed == null ? '—' : fmt(tSpeed, 2) + 'x'} paired, ${pairedCell(tPaired).replace(/^[^(]*/, '').replace(/[()]/g, '')} over the rounds; ${tSpeedOfMedians == null ? '—' : fmt(tSpeedOfMedians, 2) + 'x'} from the medians; ONNX Runtime ${oPaired.median == null ? '—' : fmt(oPaired.median, 2) + 'x'} paired).`);
p(`- Zero bytes allocated per inference after warm-up: **${rows.every(r => r.alloc === 0) ? 'met' : rows.some(r => r.alloc == null) ? 'not measured everywhere' : 'not met'}** in every configuration above (also asserted by tests/TinyOps.Engine.Tests/Runtime).`);
const runnerLoad = r => { const v = runnerLoads[r.cfg.label]; return v && v !== 'failed' ? +v : null; };
p(`- Model load faster than ORT's session creation: **${loadRows.every(r => runnerLoad(r) != null && r.oLoad != null && runnerLoad(r) < r.oLoad) ? 'met' : 'not met'}** with the shipped runner (${loadRows.map(r => `${r.cfg.label} b${r.cfg.batch} ${fmt(runnerLoad(r), 1)} vs ${fmt(r.oLoad, 1)} ms`).join(', ')}); with the JIT-compiled CLI's first load in a fresh process: **${loadRows.every(r => r.tLoad != null && r.oLoad != null && r.tLoad < r.oLoad) ? 'met' : 'not met'}**, its loader's own work (load, again) is ${loadRows.every(r => r.tLoadAgain != null && r.oLoad != null && r.tLoadAgain < r.oLoad) ? 'below' : 'not always below'} ORT's.`);
p(`- Trimmed single-file runner under 20 MB: **${+meta.runner_shipped && +meta.runner_shipped < 20e6 ? 'met' : 'not met'}** (${mbytes(+meta.runner_shipped)} shipped, ${mbytes(+meta.runner_plain)} plain).`);
const int8md = meta.int8_md && fs.existsSync(meta.int8_md) ? fs.readFileSync(meta.int8_md, 'utf8').trim() : '';
if (int8md) {
  p('- int8 (QLinear) fmnist_cnn and MobileNetV2 at least 2x faster than fp32 and matching ORT\'s argmax on 1,000 inputs:');
  p('  see the int8 section below (`bench/run-int8.sh`, run right after the tables above).');
  p('');
  p(int8md);
} else {
  p('- int8 (QLinear) fmnist_cnn and MobileNetV2 at least 2x faster than fp32 and matching ORT\'s argmax on 1,000 inputs:');
  p('  **not measured in this run** (`bench/run-int8.sh` failed or was skipped; see its output).');
}
p('');

p('## Method');
p('');
p(`- Each configuration runs ${meta.rounds} round(s); a round runs ONNX Runtime (\`node bench.mjs MODEL --threads T --iters N`);
p('  --warmup W --batch B`) and then TinyOps (`tinyops bench MODEL --batch B --threads T --iterations N --warmup W');
p('  --json`, Release build), each in a fresh process, configurations interleaved, so drift on the machine hits both');
p('  runtimes alike. Every figure in the tables is the median over the rounds of that round\'s statistic.');
p(`- Timed runs per round: N = ${meta.iters_small} for the Fashion-MNIST models, ${meta.iters_large} for the 224x224 models, after W = 50 / 5`);
p('  warm-up runs. TinyOps also keeps warming up for at least 1 s (`--warmup-ms`, default 1000) so that tiered JIT');
p('  compilation has promoted the hot kernels before timing; ORT is native code and needs no such wait.');
p('- Latency is wall time of one `Run` call (TinyOps: the span overload, inputs and outputs preallocated; ORT:');
p('  `await session.run(feeds)`, which includes the Node.js binding\'s per-call overhead of copying outputs into');
p('  JavaScript tensors). Percentiles use the same rule on both sides: sorted[min(n-1, floor(q*n))].');
p('- Inputs are identical on both sides: value i = ((i*2654435761) % 1000)/1000 as float32, symbolic dimensions');
p('  bound to the batch on the first axis and to 1 elsewhere (all models here have a symbolic batch dimension, so');
p('  bench.mjs\'s --batch applies).');
p('- ORT session options: intra-op threads T, inter-op threads 1, sequential execution, graph optimization "all".');
p('  TinyOps: `SessionOptions.Threads = T`, default kernels.');
p('- **The machine is shared and noisy**: a 2-vCPU KVM guest that other jobs use at the same time. Single-round');
p('  figures can move by 10-30%, tails (p90/p99) far more; the rounds and the medians damp this but do not remove it.');
p('  Read ratios near a target as "about equal". With 2 vCPUs, the 2-thread figures also compete with everything');
p('  else running on the machine; where ONNX Runtime\'s own 2-thread speedup is far below 2x too, the two vCPUs');
p('  likely share one physical core.');
p('- The host\'s clock moves: on the Intel guest of 2026-12-06 a dependent-add loop ran at the equivalent of');
p('  1.5 to 2.7 GHz from one minute to the next, so timings taken minutes apart are not comparable. Kernel choices');
p('  were therefore compared inside one process, alternating the two variants run by run (or alternating two builds');
p('  process by process), never against an earlier measurement. The in-process comparisons are');
p('  `dotnet run -c Release --project bench/TinyOps.Bench.Kernels -- ab MODEL ROUNDS SPEC_A SPEC_B [THREADS]`, each');
p('  SPEC setting the engine\'s kernel switches (static fields such as `SGemm.UseDotRows8`) or session options.');
p('');
p('## Machine');
p('');
p(`- CPU: ${meta.cpu}, ${meta.cpus} logical CPUs (${meta.cores} cores per socket)${meta.hypervisor ? ', ' + meta.hypervisor + ' virtual machine' : ''}; ${meta.memory} memory`);
p(`- Load average: ${meta.loadavg} on ${meta.cpus} CPUs`);
p(`- Vector extensions reported: ${meta.isa || 'unknown'}`);
p(`- OS: ${meta.os}`);
p(`- .NET: SDK ${meta.dotnet_sdk}, runtime ${runtime}`);
p(`- ONNX Runtime: onnxruntime-node ${ortVersion} on Node.js ${meta.node}`);
p(`- Date: ${meta.date}; commit ${meta.commit}`);
p('');
p('## Rerun');
p('');
p('```');
p('bench/run-peer.sh                       # all of the above, rewrites docs/benchmarks.md (a few minutes)');
p('BENCH_ROUNDS=5 bench/run-peer.sh        # more rounds on a busy machine');
p('tinyops bench MODEL --batch 8 --threads 1 --iterations 500   # one configuration, as a table');
p('bench/publish-runner.sh                 # the runner builds and their sizes');
p('```');
p('');
fs.writeFileSync(outFile, out.join('\n'));
