#!/usr/bin/env bash
# Issue 4's int8 check: quantizes fmnist_cnn and MobileNetV2 with `tinyops optimize --quantize static-int8`, measures
# TinyOps fp32 vs int8 and ONNX Runtime int8 in the same run (batch 1, 1 thread), checks that TinyOps and ONNX Runtime
# agree on the argmax of 1,000 inputs, and reports fmnist_cnn's fp32 and int8 accuracy on the 10,000 test images.
# Prints only a markdown section on stdout (progress goes to stderr), for docs/benchmarks.md.
#
# usage: bench/run-int8.sh
# environment:
#   TINYOPS_SHARED   the shared folder (default: ../shared beside the repository, else /work/shared)
#   BENCH_ROUNDS     rounds per model, each runs TinyOps fp32, TinyOps int8 and ORT int8 (default 3); the table shows the median
#   BENCH_ITERS_SMALL / BENCH_ITERS_LARGE   timed runs per round for fmnist_cnn / MobileNetV2 (default 500 / 30)
#   BENCH_KEEP=1     keep the temporary folder (quantized models, argmax files, npm install)
# Needs: dotnet (SDK 10), node and npm (onnxruntime-node from the npm registry), Debian's dataset-fashion-mnist.
# Inputs for the MobileNetV2 agreement: 1,000 pseudo-random inputs, formula in bench/int8-agreement.mjs (samples 0-999);
# its calibration uses 32 other samples of the same generator (1000-1031): there is no ImageNet here.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/bench/lib.sh"
shared="$(shared_dir "$repo" peers/ort)"
fmnist="$shared/models/fmnist_cnn.onnx"
mnv2="$repo/tests/models/mobilenet_v2/model.onnx"
for f in "$fmnist" "$mnv2"; do [[ -f "$f" ]] || { echo "run-int8: model $f is missing" >&2; exit 1; }; done
data_dir="${TINYOPS_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
[[ -d "$data_dir" ]] || { echo "run-int8: Fashion-MNIST not found at $data_dir; apt-get install dataset-fashion-mnist" >&2; exit 1; }
rounds="${BENCH_ROUNDS:-3}"
iters_small="${BENCH_ITERS_SMALL:-500}"
iters_large="${BENCH_ITERS_LARGE:-30}"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/tinyops-int8.XXXXXX")"
if [[ "${BENCH_KEEP:-0}" != 1 ]]; then trap 'rm -rf "$tmp"' EXIT; else echo "run-int8: keeping $tmp" >&2; fi
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

log "installing the ONNX Runtime peer into $tmp/ort"
install_ort_peer "$shared" "$tmp/ort" "$repo" bench.mjs

log "building the tinyops CLI (Release)"
tinyops="$(build_tinyops "$repo" "$tmp")"
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"

log "quantizing fmnist_cnn (500 Fashion-MNIST training images)"
t0=$(date +%s.%N)
"$tinyops" optimize "$fmnist" "$tmp/fmnist_cnn.int8.onnx" --quantize static-int8 --calibration fashion-mnist --per-channel >&2
t1=$(date +%s.%N)
log "quantizing MobileNetV2 (32 pseudo-random inputs)"
"$tinyops" optimize "$mnv2" "$tmp/mobilenet_v2.int8.onnx" --quantize static-int8 --calibration random --per-channel >&2
t2=$(date +%s.%N)
q_fm=$(awk "BEGIN{printf \"%.1f\", $t1-$t0}"); q_mn=$(awk "BEGIN{printf \"%.1f\", $t2-$t1}")

p50_tinyops() { "$tinyops" bench "$1" --batch 1 --threads 1 --iterations "$2" --warmup "$3" --json | sed -n 's/.*"p50_us":\([0-9.]*\).*/\1/p'; }
p50_ort() { (cd "$tmp/ort" && node bench.mjs "$1" --threads 1 --batch 1 --iters "$2" --warmup "$3") | sed -n 's/.*"p50_us":\([0-9.]*\).*/\1/p'; }
median() { sort -g | awk '{a[NR]=$1} END{if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

declare -A res
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for name in fmnist_cnn mobilenet_v2; do
  if [[ $name == fmnist_cnn ]]; then fp="$fmnist"; q="$tmp/fmnist_cnn.int8.onnx"; it=$iters_small; wu=50
  else fp="$mnv2"; q="$tmp/mobilenet_v2.int8.onnx"; it=$iters_large; wu=5; fi
  : >"$tmp/$name.fp32"; : >"$tmp/$name.int8"; : >"$tmp/$name.ort"
  for ((r = 1; r <= rounds; r++)); do
    log "$name round $r/$rounds: TinyOps fp32, TinyOps int8, ORT int8"
    p50_tinyops "$fp" "$it" "$wu" >>"$tmp/$name.fp32"
    p50_tinyops "$q" "$it" "$wu" >>"$tmp/$name.int8"
    p50_ort "$q" "$it" "$wu" >>"$tmp/$name.ort"
  done
  res[$name.fp32]=$(median <"$tmp/$name.fp32"); res[$name.int8]=$(median <"$tmp/$name.int8"); res[$name.ort]=$(median <"$tmp/$name.ort")
  # each round's own fp32 / int8 (the two ran seconds apart, so the host's slow swings cancel), their median and range
  paste "$tmp/$name.fp32" "$tmp/$name.int8" | awk '$1 > 0 && $2 > 0 {printf "%.4f\n", $1 / $2}' >"$tmp/$name.ratio"
  res[$name.paired]=$(median <"$tmp/$name.ratio")
  res[$name.range]=$(sort -g "$tmp/$name.ratio" | awk 'NR == 1 {lo = $1} {hi = $1} END {if (NR) printf "%.2f-%.2fx", lo, hi; else print "-"}')
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

log "agreement: fmnist_cnn int8 on the first 1,000 test images"
"$tinyops" eval "$tmp/fmnist_cnn.int8.onnx" --dataset fashion-mnist --limit 1000 --argmax-out "$tmp/fm.argmax" --scores-out "$tmp/fm.scores" >&2
agree_fm="$(cd "$tmp/ort" && node int8-agreement.mjs "$tmp/fmnist_cnn.int8.onnx" --dataset fashion-mnist --count 1000 --data-dir "$data_dir" --tinyops-argmax "$tmp/fm.argmax" --tinyops-scores "$tmp/fm.scores")"
log "agreement: MobileNetV2 int8 on 1,000 pseudo-random inputs"
"$tinyops" eval "$tmp/mobilenet_v2.int8.onnx" --dataset random --limit 1000 --batch 10 --argmax-out "$tmp/mn.argmax" --scores-out "$tmp/mn.scores" >&2
agree_mn="$(cd "$tmp/ort" && node int8-agreement.mjs "$tmp/mobilenet_v2.int8.onnx" --dataset random --count 1000 --batch 10 --tinyops-argmax "$tmp/mn.argmax" --tinyops-scores "$tmp/mn.scores")"
field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" <<<"$1"; }

log "accuracy on the 10,000 Fashion-MNIST test images"
acc_fp=$("$tinyops" eval "$fmnist" --dataset fashion-mnist 2>/dev/null | sed -n 's/^accuracy: //p')
acc_q=$("$tinyops" eval "$tmp/fmnist_cnn.int8.onnx" --dataset fashion-mnist 2>/dev/null | sed -n 's/^accuracy: //p')

ort_version="$(cd "$tmp/ort" && node -e "import('onnxruntime-node').then(m => console.log(m.default.env.versions?.common ?? '?'))")"
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
fmt() { awk "BEGIN{v=$1; if (v >= 1000) printf \"%.2f ms\", v/1000; else printf \"%.1f µs\", v}"; }
speed() { awk "BEGIN{printf \"%.2fx\", $1/$2}"; }
pass() { awk "BEGIN{print ($1/$2 >= 2) ? \"yes\" : \"no\"}"; }
pct() { awk "BEGIN{printf \"%.2f %%\", 100*$1}"; }

cat <<MD
## int8 (static, QOperator) vs fp32

Measured $(date -u +%Y-%m-%d) at commit $commit on $cpu ($(nproc) cores; load average $load_before before, $load_after after),
.NET $(dotnet --version), ONNX Runtime $ort_version (onnxruntime-node, CPU, graph optimizations 'all'). \`bench/run-int8.sh\`:
batch 1, 1 thread, p50 of $iters_small (fmnist_cnn) / $iters_large (MobileNetV2) timed runs, median of $rounds rounds that run
TinyOps fp32, TinyOps int8 and ORT int8 one after the other. *speedup* is the ratio of the two medians; *paired* is the
median of each round's own fp32 / int8 (the two measured seconds apart, so a slow or fast spell of the host that spans
minutes weighs on both; the range of the rounds' ratios follows it), the figure the target is read on. Models quantized by \`tinyops optimize --quantize static-int8\`
(uint8 activations, int8 7-bit symmetric per-channel Conv weights, MinMax calibration; fmnist_cnn on 500 training images
in ${q_fm} s, MobileNetV2 on 32 pseudo-random inputs in ${q_mn} s).

| model | TinyOps fp32 p50 | TinyOps int8 p50 | speedup | paired (rounds) | target ≥ 2x | ORT int8 p50 | argmax disagreements (of 1,000) | bit-identical outputs (of 1,000) |
|---|---:|---:|---:|---:|:---:|---:|---:|---:|
| fmnist_cnn | $(fmt ${res[fmnist_cnn.fp32]}) | $(fmt ${res[fmnist_cnn.int8]}) | $(speed ${res[fmnist_cnn.fp32]} ${res[fmnist_cnn.int8]}) | $(speed ${res[fmnist_cnn.paired]} 1) (${res[fmnist_cnn.range]}) | $(pass ${res[fmnist_cnn.paired]} 1) | $(fmt ${res[fmnist_cnn.ort]}) | $(field "$agree_fm" disagreements) | $(field "$agree_fm" identical_scores) |
| mobilenet_v2 | $(fmt ${res[mobilenet_v2.fp32]}) | $(fmt ${res[mobilenet_v2.int8]}) | $(speed ${res[mobilenet_v2.fp32]} ${res[mobilenet_v2.int8]}) | $(speed ${res[mobilenet_v2.paired]} 1) (${res[mobilenet_v2.range]}) | $(pass ${res[mobilenet_v2.paired]} 1) | $(fmt ${res[mobilenet_v2.ort]}) | $(field "$agree_mn" disagreements) | $(field "$agree_mn" identical_scores) |

fmnist_cnn accuracy on the 10,000 Fashion-MNIST test images: fp32 $(pct $acc_fp), int8 $(pct $acc_q) (TinyOps; ONNX Runtime int8 on the
first 1,000: $(pct $(field "$agree_fm" ort_accuracy))).

Agreement inputs: fmnist_cnn the first 1,000 test images; MobileNetV2 1,000 pseudo-random inputs in [0,1) (formula in
\`bench/int8-agreement.mjs\`). MobileNetV2 has random weights: ORT's int8 argmax takes $(field "$agree_mn" distinct_argmax) distinct
value(s) over the 1,000 inputs, so its argmax check is weak; the bit-identical column compares the whole 1,000-score outputs
(largest absolute difference $(field "$agree_mn" max_abs_score_diff)).
MD
