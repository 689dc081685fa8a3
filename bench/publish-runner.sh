#!/usr/bin/env bash
# Publishes the minimal runner (src/TinyOps.Run, `tinyops-run`) as a trimmed, self-contained, single-file
# linux-x64 executable and prints its size. Two variants:
#   plain    dotnet publish ... --self-contained -p:PublishSingleFile=true -p:PublishTrimmed=true
#   shipped  the same plus ReadyToRun (precompiled code, so loading does not wait for the JIT) and compression
#            of the bundled assemblies
# usage: bench/publish-runner.sh [OUT_DIR]     (default: artifacts/tinyops-run under the repository)
# Output: the executables in OUT_DIR/{plain,shipped}/tinyops-run and, on the last lines,
#   runner_plain_bytes=N
#   runner_shipped_bytes=N
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo/artifacts/tinyops-run}"
rid="${RUNNER_RID:-linux-x64}"
mkdir -p "$out"

publish() { # NAME EXTRA_PROPERTIES...
  local name="$1"; shift
  rm -rf "$out/$name"
  echo "publishing $name ($rid) ..." >&2
  if ! dotnet publish "$repo/src/TinyOps.Run" -c Release -r "$rid" --self-contained \
      -p:PublishSingleFile=true -p:PublishTrimmed=true "$@" -o "$out/$name" >"$out/$name.log" 2>&1; then
    grep -E "error|warning" "$out/$name.log" >&2 || tail -20 "$out/$name.log" >&2
    echo "publish-runner: dotnet publish failed for the $name variant; full log: $out/$name.log" >&2
    exit 1
  fi
}

publish plain
publish shipped -p:PublishReadyToRun=true -p:EnableCompressionInSingleFile=true

for name in plain shipped; do
  f="$out/$name/tinyops-run"
  [[ -x "$f" ]] || { echo "publish-runner: $f was not produced" >&2; exit 1; }
  bytes=$(stat -c %s "$f")
  printf '%-8s %s  %d bytes (%.2f MB)\n' "$name" "$f" "$bytes" "$(awk -v b="$bytes" 'BEGIN{print b/1e6}')" >&2
done
echo "runner_plain_bytes=$(stat -c %s "$out/plain/tinyops-run")"
echo "runner_shipped_bytes=$(stat -c %s "$out/shipped/tinyops-run")"
