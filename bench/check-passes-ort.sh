#!/usr/bin/env bash
# Issue 5's ONNX Runtime check of the optimization passes: runs every pass of `tinyops optimize` on fmnist_cnn and
# fmnist_mlp (and, unless PASSES_QUICK=1, on the torchvision exports in tests/models), loads each output in ONNX
# Runtime and compares it with TinyOps on the same inputs: the argmax of every input, bit-identical outputs and the
# largest absolute output difference (bench/int8-agreement.mjs), and for the Fashion-MNIST models both accuracies
# on the 10,000 test images. The tests never need ONNX Runtime; this script is where the peer is consulted.
# Prints only a markdown section on stdout (progress goes to stderr), for docs/optimize.md.
#
# usage: bench/check-passes-ort.sh
# environment:
#   TINYOPS_SHARED   the shared folder (default: ../shared beside the repository, else /work/shared)
#   PASSES_QUICK=1   only the Fashion-MNIST models
#   PASSES_KEEP=1    keep the temporary folder (optimized models, argmax and score files, npm install)
# Needs: dotnet (SDK 10), node and npm (onnxruntime-node from the npm registry), Debian's dataset-fashion-mnist.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/bench/lib.sh"
shared="$(shared_dir "$repo")"
data_dir="${TINYOPS_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
[[ -d "$data_dir" ]] || { echo "check-passes-ort: Fashion-MNIST not found at $data_dir; apt-get install dataset-fashion-mnist" >&2; exit 1; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/tinyops-passes.XXXXXX")"
if [[ "${PASSES_KEEP:-0}" != 1 ]]; then trap 'rm -rf "$tmp"' EXIT; else echo "check-passes-ort: keeping $tmp" >&2; fi
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

log "installing the ONNX Runtime peer into $tmp/ort"
install_ort_peer "$shared" "$tmp/ort" "$repo"
log "building the tinyops CLI (Release)"
tinyops="$(build_tinyops "$repo" "$tmp")"
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" <<<"$1"; }
pct() { awk "BEGIN{printf \"%.2f %%\", 100*$1}"; }

# variant name -> tinyops optimize options ("" = the model as it is)
declare -a names=(base fold-constants+dead-nodes fold-batchnorm fuse-activations static-int8-qoperator static-int8-qdq
  static-int8-percentile static-int8-entropy dynamic-int8 prune-0.5 prune-channels-0.25 float16-weights)
declare -A opts=(
  [base]=""
  [fold-constants+dead-nodes]="--passes fold-constants,remove-dead-nodes"
  [fold-batchnorm]="--passes fold-constants,fold-batchnorm"
  [fuse-activations]="--passes fold-constants,fuse-activations"
  [static-int8-qoperator]="--quantize static-int8 --per-channel"
  [static-int8-qdq]="--quantize static-int8 --format qdq --per-channel"
  [static-int8-percentile]="--quantize static-int8 --calibration-method percentile"
  [static-int8-entropy]="--quantize static-int8 --calibration-method entropy"
  [dynamic-int8]="--quantize dynamic-int8"
  [prune-0.5]="--prune 0.5"
  [prune-channels-0.25]="--prune-channels 0.25"
  [float16-weights]="--passes fold-constants --fp16"
)

rows=""
check() { # model-name model-path dataset count calibration
  local mname="$1" mpath="$2" ds="$3" count="$4" calib="$5"
  for v in "${names[@]}"; do
    local out="$tmp/$mname.$v.onnx" o="${opts[$v]}"
    if [[ -z "$o" ]]; then cp "$mpath" "$out"
    else
      [[ "$o" == *static-int8* ]] && o="$o --calibration $calib"
      # shellcheck disable=SC2086
      if ! "$tinyops" optimize "$mpath" "$out" $o >"$tmp/$mname.$v.log" 2>&1; then
        rows+="| $mname | $v | $(tail -1 "$tmp/$mname.$v.log" | sed 's/|/\\|/g') | | | | | |"$'\n'; log "$mname $v: not applicable"; continue
      fi
    fi
    log "$mname $v: TinyOps and ONNX Runtime on $count inputs"
    local acc_t="" argopts=(--dataset "$ds" --limit "$count" --argmax-out "$tmp/a" --scores-out "$tmp/s")
    [[ "$ds" == random ]] && argopts+=(--batch 10)
    acc_t=$("$tinyops" eval "$out" "${argopts[@]}" 2>/dev/null | sed -n 's/^accuracy: //p')
    local mjs=(--dataset "$ds" --count "$count" --tinyops-argmax "$tmp/a" --tinyops-scores "$tmp/s")
    [[ "$ds" == fashion-mnist ]] && mjs+=(--data-dir "$data_dir") || mjs+=(--batch 10)
    local res
    if ! res="$(cd "$tmp/ort" && node int8-agreement.mjs "$out" "${mjs[@]}" 2>"$tmp/ort.err")"; then
      rows+="| $mname | $v | ONNX Runtime refused it: $(grep -m1 -o 'Error.*' "$tmp/ort.err" | cut -c1-120 | sed 's/|/\\|/g') | | | | | |"$'\n'; log "$mname $v: ORT failed"; continue
    fi
    local size; size=$(stat -c %s "$out")
    local acc_cols="| | |"
    [[ -n "$acc_t" ]] && acc_cols="| $(pct "$acc_t") | $(pct "$(field "$res" ort_accuracy)") |"
    rows+="| $mname | $v | $size $acc_cols $(field "$res" disagreements) / $count | $(field "$res" identical_scores) / $count | $(field "$res" max_abs_score_diff) |"$'\n'
  done
}

check fmnist_cnn "$shared/models/fmnist_cnn.onnx" fashion-mnist 10000 fashion-mnist
check fmnist_mlp "$shared/models/fmnist_mlp.onnx" fashion-mnist 10000 fashion-mnist
if [[ "${PASSES_QUICK:-0}" != 1 ]]; then
  for m in mobilenet_v2 resnet18 squeezenet1_1; do check "$m" "$repo/tests/models/$m/model.onnx" random 50 random; done
fi

ort_version="$(cd "$tmp/ort" && node -e "import('onnxruntime-node').then(m => console.log(m.default.env.versions?.common ?? '?'))")"
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
cat <<MD
## Every pass in ONNX Runtime

Measured $(date -u +%Y-%m-%d) at commit $commit on $cpu, ONNX Runtime $ort_version (onnxruntime-node, CPU, graph
optimizations 'all'). \`bench/check-passes-ort.sh\`: each variant written by \`tinyops optimize\`, run by TinyOps
(\`tinyops eval --argmax-out --scores-out\`) and by ONNX Runtime (\`bench/int8-agreement.mjs\`) on the same inputs: the
Fashion-MNIST models on the 10,000 test images, the torchvision exports (random weights) on 50 pseudo-random inputs.

| model | variant | file bytes | TinyOps accuracy | ORT accuracy | argmax disagreements | bit-identical outputs | largest output difference |
|---|---|---:|---:|---:|---:|---:|---:|
${rows}
MD
