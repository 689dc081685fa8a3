# Shared by bench scripts (source it): where shared/ is, the ONNX Runtime peer install, the CLI build.
# Each function logs to stderr and exits the calling script with a clear message on failure.

# shared_dir REPO: $TINYOPS_SHARED, else ../shared beside the repository, else /work/shared
shared_dir() {
  if [[ -n "${TINYOPS_SHARED:-}" ]]; then echo "$TINYOPS_SHARED"
  elif [[ -d "$1/../shared/models" ]]; then (cd "$1/../shared" && pwd)
  else echo /work/shared; fi
}

# install_ort_peer SHARED DEST REPO: npm install of shared/peers/ort (onnxruntime-node) into DEST, with int8-agreement.mjs
install_ort_peer() {
  local src="$1/peers/ort" dest="$2"
  [[ -f "$src/package.json" ]] || { echo "no ONNX Runtime peer at $src; set TINYOPS_SHARED" >&2; exit 1; }
  mkdir -p "$dest"
  for f in bench.mjs package.json package-lock.json .npmrc; do [[ -e "$src/$f" ]] && cp "$src/$f" "$dest/"; done
  cp "$3/bench/int8-agreement.mjs" "$dest/"
  chmod -R u+w "$dest"
  (cd "$dest" && npm install --no-audit --no-fund --loglevel=error >"$dest/npm.log" 2>&1) \
    || { cat "$dest/npm.log" >&2; echo "npm install failed in $dest" >&2; exit 1; }
}

# build_tinyops REPO LOGDIR: Release build of the CLI; prints the path of the tinyops executable
build_tinyops() {
  if ! dotnet build "$1/src/TinyOps.Cli" -c Release >"$2/build.log" 2>&1; then
    grep -E " error |rror\(s\)" "$2/build.log" >&2 || tail -30 "$2/build.log" >&2
    echo "the Release build of the CLI failed" >&2; exit 1
  fi
  echo "$1/src/TinyOps.Cli/bin/Release/net10.0/tinyops"
}
