#!/usr/bin/env bash
# Measures TinyOps against ONNX Runtime (the peer in $TINYOPS_SHARED/peers/ort) in the same run, alternating the
# two on each configuration, and writes docs/benchmarks.md.
#
# usage: bench/run-peer.sh [--out FILE]
# environment:
#   TINYOPS_SHARED  the shared folder (default: ../shared beside the repository, else /work/shared)
#   BENCH_ROUNDS    rounds per configuration, each runs ORT then TinyOps (default 3); the table shows the median
#   BENCH_ITERS_SMALL / BENCH_ITERS_LARGE   timed runs per round for the Fashion-MNIST / 224x224 models (500 / 30)
#   BENCH_KEEP=1    keep the temporary folder (results.jsonl, npm install, published runner)
# Needs: dotnet (SDK 10), node and npm (the npm registry for onnxruntime-node).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$repo/docs/benchmarks.md"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "run-peer: unknown argument '$1' (see --help)" >&2; exit 1 ;;
  esac
done

source "$repo/bench/lib.sh"
shared="$(shared_dir "$repo" peers/ort)"

rounds="${BENCH_ROUNDS:-3}"
iters_small="${BENCH_ITERS_SMALL:-500}"
iters_large="${BENCH_ITERS_LARGE:-30}"

# Configurations, in the order of the table: label|model path|batch|threads|iterations|warm-up runs
configs=(
  "fmnist_cnn|$shared/models/fmnist_cnn.onnx|1|1|$iters_small|50"
  "fmnist_cnn|$shared/models/fmnist_cnn.onnx|8|1|$iters_small|50"
  "fmnist_mlp|$shared/models/fmnist_mlp.onnx|1|1|$iters_small|50"
  "fmnist_mlp|$shared/models/fmnist_mlp.onnx|8|1|$iters_small|50"
  "mobilenet_v2|$repo/tests/models/mobilenet_v2/model.onnx|1|1|$iters_large|5"
  "mobilenet_v2|$repo/tests/models/mobilenet_v2/model.onnx|1|2|$iters_large|5"
  "resnet18|$repo/tests/models/resnet18/model.onnx|1|1|$iters_large|5"
  "squeezenet1_1|$repo/tests/models/squeezenet1_1/model.onnx|1|1|$iters_large|5"
)
for c in "${configs[@]}"; do
  IFS='|' read -r _ path _ <<<"$c"
  [[ -f "$path" ]] || { echo "run-peer: model $path is missing" >&2; exit 1; }
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/tinyops-bench.XXXXXX")"
if [[ "${BENCH_KEEP:-0}" != 1 ]]; then trap 'rm -rf "$tmp"' EXIT; else echo "run-peer: keeping $tmp" >&2; fi
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# 1. The peer: a private copy of the read-only shared folder, with its own npm install.
log "installing the ONNX Runtime peer into $tmp/ort"
install_ort_peer "$shared" "$tmp/ort" "$repo" bench.mjs

# 2. TinyOps: the CLI in Release, and the published runner for its size.
log "building the tinyops CLI (Release)"
tinyops="$(build_tinyops "$repo" "$tmp")"
log "building bench/TinyOps.Bench.Kernels (the host's two-thread scaling probe)"
dotnet build "$repo/bench/TinyOps.Bench.Kernels" -c Release >"$tmp/build-kernels.log" 2>&1 \
  || { tail -30 "$tmp/build-kernels.log" >&2; exit 1; }
probe="$repo/bench/TinyOps.Bench.Kernels/bin/Release/net10.0/TinyOps.Bench.Kernels"
log "publishing tinyops-run"
sizes="$("$repo/bench/publish-runner.sh" "$tmp/runner" 2>"$tmp/publish.log")" \
  || { cat "$tmp/publish.log" >&2; exit 1; }
runner_plain=$(sed -n 's/^runner_plain_bytes=//p' <<<"$sizes")
runner_shipped=$(sed -n 's/^runner_shipped_bytes=//p' <<<"$sizes")

# 3. The measurements: for each configuration and round, ORT then TinyOps, one JSON line each.
results="$tmp/results.jsonl"
: >"$results"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
runner_starts="$tmp/runner-starts.txt"
: >"$runner_starts"
record() { # CONFIG_INDEX ROUND SIDE JSON_LINE_OR_EMPTY ERROR_TEXT
  local json="$4"
  if [[ -z "$json" || "${json:0:1}" != "{" ]]; then
    local err; err=$(printf '%s' "$5" | tr -d '\r' | tr '\n"\\' "   " | cut -c1-300)
    json="{\"error\":\"$err\"}"
  fi
  printf '{"config":%d,"round":%d,"side":"%s","result":%s}\n' "$1" "$2" "$3" "$json" >>"$results"
}
for ((r = 1; r <= rounds; r++)); do
  for i in "${!configs[@]}"; do
    IFS='|' read -r label path batch threads iters warm <<<"${configs[$i]}"
    log "round $r/$rounds: $label batch $batch threads $threads ($iters runs)"
    set +e
    o=$(cd "$tmp/ort" && node bench.mjs "$path" --threads "$threads" --iters "$iters" --warmup "$warm" --batch "$batch" 2>"$tmp/err.txt" | tail -1)
    record "$i" "$r" ort "$o" "$(cat "$tmp/err.txt")"
    t=$("$tinyops" bench "$path" --batch "$batch" --threads "$threads" --iterations "$iters" --warmup "$warm" --json 2>"$tmp/err.txt" | tail -1)
    record "$i" "$r" tinyops "$t" "$(cat "$tmp/err.txt")"
    # The shipped runner's load time, once per model and round, right after ORT's session creation for that
    # model (the host's clock drifts over minutes, so both sides are sampled in the same minute).
    if ! grep -q "^$label $r " "$runner_starts" 2>/dev/null; then
      ms=$("$tmp/runner/shipped/tinyops-run" "$path" --iterations 0 2>/dev/null | sed -n 's/.*loaded in \([0-9.]*\) ms.*/\1/p' | head -1)
      [[ -n "$ms" ]] && echo "$label $r $ms" >>"$runner_starts"
    fi
    # What the host let two threads gain at this moment (independent FMA loops), right after the two-thread runs.
    if [[ "$threads" == 2 ]]; then
      h=$("$probe" peak --scaling 2>/dev/null | tail -1)
      [[ "${h:0:1}" == "{" ]] && printf '{"round":%d,"host":%s}\n' "$r" "$h" >>"$tmp/host.jsonl"
    fi
    set -e
  done
done

load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# The shipped runner's load time per model (one process each, as a device would start it): the median of the
# starts taken in the rounds above.
runner_loads="$tmp/runner-loads.txt"
: >"$runner_loads"
for c in "${configs[@]}"; do
  IFS='|' read -r label _ <<<"$c"
  grep -q "^$label " "$runner_loads" && continue
  ms=$(awk -v l="$label" '$1 == l {print $3}' "$runner_starts" | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "failed"}')
  echo "$label $ms" >>"$runner_loads"
done

# The int8 section (its own rounds of TinyOps fp32, TinyOps int8 and ORT int8), unless BENCH_INT8=0.
int8_md="$tmp/int8.md"
if [[ "${BENCH_INT8:-1}" != 0 ]]; then
  log "running bench/run-int8.sh"
  "$repo/bench/run-int8.sh" >"$int8_md" 2>"$tmp/int8.log" || { tail -20 "$tmp/int8.log" >&2; echo "run-peer: run-int8.sh failed; the report says so" >&2; rm -f "$int8_md"; }
fi

# 4. The report.
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$repo" diff --quiet HEAD -- src bench 2>/dev/null || commit="$commit (with uncommitted changes)"
cpu="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
isa="$(grep -o -w -E 'avx2|avx512f|avx512_vnni|avx_vnni|amx_int8' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/ $//')"
node "$repo/bench/write-report.mjs" "$results" "$out" \
  "date=$(date -u +%Y-%m-%d\ %H:%M\ UTC)" \
  "commit=$commit" \
  "cpu=$cpu" \
  "cpus=$(nproc)" \
  "cores=$(lscpu | sed -n 's/^Core(s) per socket:[[:space:]]*//p' | head -1)" \
  "hypervisor=$(lscpu | sed -n 's/^Hypervisor vendor:[[:space:]]*//p' | head -1)" \
  "isa=$isa" \
  "memory=$(free -g | awk '/^Mem:/ {print $2 " GiB"}')" \
  "os=$(. /etc/os-release && echo "$PRETTY_NAME")" \
  "dotnet_sdk=$(dotnet --version)" \
  "node=$(node --version)" \
  "loadavg=before the measurements $load_before, after them $load_after (1, 5, 15 minutes)" \
  "rounds=$rounds" "iters_small=$iters_small" "iters_large=$iters_large" \
  "runner_plain=$runner_plain" "runner_shipped=$runner_shipped" \
  "runner_loads=$(tr '\n' ';' <"$runner_loads")" \
  "int8_md=$int8_md" \
  "host_scaling=$(sed -n 's/.*"host_two_thread_scaling":\([0-9.]*\).*/\1/p' "$tmp/host.jsonl" 2>/dev/null | tr '\n' ';')" \
  "configs=$(printf '%s;' "${configs[@]}" | sed "s|$repo/||g; s|$shared/|../shared/|g")"
log "wrote $out"
