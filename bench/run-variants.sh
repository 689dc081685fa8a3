#!/usr/bin/env bash
# The accuracy / size / latency trade-off of fmnist_cnn's variants (samples/recipes/fmnist-cnn.yaml): builds the
# recipe with `tinyops optimize --recipe` (accuracy on the 10,000 test images, file size, planned peak memory), then
# measures every variant's batch-1 single-thread latency with `tinyops bench` (one process per measurement, 1 s of
# warm-up), in BENCH_ROUNDS interleaved rounds, and takes the fastest round's p50 (other processes on the machine only
# ever add time, so the fastest round is the least disturbed). Writes docs/img/fmnist-cnn-variants.svg
# (bench/variants-chart.mjs) and prints a markdown table on stdout for docs/optimize.md (progress on stderr).
#
# usage: bench/run-variants.sh [RECIPE]
# environment: TINYOPS_SHARED, BENCH_ROUNDS (default 5), BENCH_ITERS (timed runs per measurement, default 2000), BENCH_KEEP=1
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/bench/lib.sh"
shared="$(shared_dir "$repo")"
recipe="${1:-$repo/samples/recipes/fmnist-cnn.yaml}"
model="$shared/models/fmnist_cnn.onnx"
rounds="${BENCH_ROUNDS:-5}"; iters="${BENCH_ITERS:-2000}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/tinyops-variants.XXXXXX")"
if [[ "${BENCH_KEEP:-0}" != 1 ]]; then trap 'rm -rf "$tmp"' EXIT; else echo "run-variants: keeping $tmp" >&2; fi
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

log "building the tinyops CLI (Release)"
tinyops="$(build_tinyops "$repo" "$tmp")"
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"

# `tinyops bench` below times every variant, so the recipe build skips its own latency runs: it reads a copy with
# latency_runs: 0 (the top-level line replaced, or added when the recipe has none). A recipe that is not block-style
# YAML (JSON) is built as it is, with its own latency runs.
build_recipe="$tmp/recipe.yaml"
if grep -q '^latency_runs:' "$recipe"; then sed 's/^latency_runs:.*/latency_runs: 0/' "$recipe" >"$build_recipe"
elif grep -q '^variants:' "$recipe"; then { cat "$recipe"; printf '\nlatency_runs: 0\n'; } >"$build_recipe"
else build_recipe="$recipe"; fi

log "building the variants of $recipe"
"$tinyops" optimize "$model" "$tmp/variants" --recipe "$build_recipe" >"$tmp/recipe.out" 2>"$tmp/recipe.err" || [[ $? == 3 ]] \
  || { cat "$tmp/recipe.err" >&2; exit 1; }
cp "$model" "$tmp/variants/base.onnx"
variants=(base $(node -e "for (const v of JSON.parse(require('fs').readFileSync('$tmp/variants/report.json','utf8')).variants) console.log(v.name)"))

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= rounds; r++)); do
  for v in "${variants[@]}"; do
    log "round $r/$rounds: $v"
    p50=$("$tinyops" bench "$tmp/variants/$v.onnx" --batch 1 --threads 1 --iterations "$iters" --json | sed -n 's/.*"p50_us":\([0-9.]*\).*/\1/p')
    echo "$v $p50" >>"$tmp/latency.txt"
  done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# the fastest round per variant, then the chart and the table
node - "$tmp/variants/report.json" "$tmp/latency.txt" "$repo/docs/img/fmnist-cnn-variants.svg" <<'JS' >"$tmp/table.md"
const fs = require('fs');
const [reportPath, latPath, svgPath] = process.argv.slice(2);
const report = JSON.parse(fs.readFileSync(reportPath, 'utf8'));
const lat = {};
for (const line of fs.readFileSync(latPath, 'utf8').trim().split('\n')) { const [n, v] = line.split(' '); (lat[n] ??= []).push(+v); }
const fastest = a => Math.min(...a); // the least disturbed round
report.base.latency_p50_us = fastest(lat.base);
for (const v of report.variants) if (v.evaluation) v.evaluation.latency_p50_us = fastest(lat[v.name]);
fs.writeFileSync(reportPath, JSON.stringify(report, null, 2));
const kib = b => (b / 1024).toFixed(1);
const rows = [['base (fp32)', '', report.base, null]].concat(report.variants.map(v => [v.name, v.passes.join(' → '), v.evaluation, v]));
console.log('| variant | passes | accuracy | drop (points) | file KiB | smaller | p50 latency µs | planned peak KiB | MACs |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
for (const [name, passes, e, v] of rows)
  console.log(`| ${name} | ${passes.replace(/\|/g, '\\|')} | ${(100 * e.accuracy).toFixed(2)} % | ${v ? v.accuracy_drop.toFixed(2) : ''} | ${kib(e.file_bytes)} | ${(report.base.file_bytes / e.file_bytes).toFixed(2)}x | ${e.latency_p50_us.toFixed(1)} | ${kib(e.planned_peak_bytes)} | ${e.macs.toLocaleString('en-US')} |`);
JS
mkdir -p "$repo/docs/img"
node "$repo/bench/variants-chart.mjs" "$tmp/variants/report.json" "$repo/docs/img/fmnist-cnn-variants.svg"
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
cat <<MD
Measured $(date -u +%Y-%m-%d) at commit $commit on $cpu ($(nproc) cores; load average $load_before before, $load_after after),
.NET $(dotnet --version). \`bench/run-variants.sh\`: accuracy on the 10,000 Fashion-MNIST test images; latency = the fastest of
$rounds interleaved rounds of \`tinyops bench --batch 1 --threads 1\` p50 ($iters timed runs after 1 s of warm-up, one process each).

$(cat "$tmp/table.md")
MD
