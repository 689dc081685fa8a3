# Shared by bench scripts (source it): where shared/ is, the ONNX Runtime peer install, the CLI build.
# Each function logs to stderr and exits the calling script with a clear message (prefixed with its name) on failure.

_lib_fail() { echo "$(basename "$0" .sh): $*" >&2; exit 1; }

# shared_dir REPO [PROBE]: $TINYOPS_SHARED, else ../shared beside the repository if it has PROBE (default models),
# else /work/shared
shared_dir() {
  if [[ -n "${TINYOPS_SHARED:-}" ]]; then echo "$TINYOPS_SHARED"
  elif [[ -d "$1/../shared/${2:-models}" ]]; then (cd "$1/../shared" && pwd)
  else echo /work/shared; fi
}

# install_ort_peer SHARED DEST REPO [FILE...]: npm install of shared/peers/ort (onnxruntime-node) into DEST, with
# int8-agreement.mjs; the peer must have package.json and each FILE the caller runs from it (e.g. bench.mjs)
install_ort_peer() {
  local src="$1/peers/ort" dest="$2" repo="$3" f
  for f in package.json "${@:4}"; do
    [[ -f "$src/$f" ]] || _lib_fail "no ONNX Runtime peer at $src ($f is missing); set TINYOPS_SHARED to the shared folder"
  done
  mkdir -p "$dest"
  for f in bench.mjs package.json package-lock.json .npmrc; do [[ -e "$src/$f" ]] && cp "$src/$f" "$dest/"; done
  cp "$repo/bench/int8-agreement.mjs" "$dest/"
  chmod -R u+w "$dest"
  (cd "$dest" && npm install --no-audit --no-fund --loglevel=error >"$dest/npm.log" 2>&1) \
    || { cat "$dest/npm.log" >&2; _lib_fail "npm install failed in $dest"; }
}

# build_tinyops REPO LOGDIR: Release build of the CLI; prints the path of the tinyops executable
build_tinyops() {
  if ! dotnet build "$1/src/TinyOps.Cli" -c Release >"$2/build.log" 2>&1; then
    grep -E " error |rror\(s\)" "$2/build.log" >&2 || tail -30 "$2/build.log" >&2
    _lib_fail "the Release build of the CLI failed"
  fi
  echo "$1/src/TinyOps.Cli/bin/Release/net10.0/tinyops"
}
