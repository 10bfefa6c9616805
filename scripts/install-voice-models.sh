#!/usr/bin/env bash
# Installs what the Silero VAD of the voice gateway needs, from npm, into a cache outside the repo, and
# prints the settings that point IT0 at it (one NAME=path line each, shell-quoted, for eval):
#
#   IT0_ONNXRUNTIME_LIB  libonnxruntime.so.1 of onnxruntime-node (ONNX Runtime's own build, MIT)
#   IT0_SILERO_MODEL     silero_vad_v5.onnx of @ricky0123/vad-web (the Silero v5 model, MIT; the package ISC)
#
# Those two paths are also IT0's defaults, so after this script `it0 serve` finds them by itself.
# Idempotent: a cache holding the pinned versions is reused without touching the network. Only the two
# files are kept (about 48 MB); the npm install they come from is staged and removed.
#
#   IT0_VOICE_CACHE  cache directory (default ${XDG_CACHE_HOME:-~/.cache}/it0/voice)
set -euo pipefail

ort_version=1.30.0
vad_version=0.0.31
dir="${IT0_VOICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/it0/voice}"
stamp="onnxruntime-node@$ort_version @ricky0123/vad-web@$vad_version"

case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "install-voice-models: no ONNX Runtime build for $(uname -m) in onnxruntime-node" >&2; exit 1 ;;
esac
[ "$(uname -s)" = Linux ] || { echo "install-voice-models: Linux only (onnxruntime-node ships .dylib/.dll elsewhere)" >&2; exit 1; }

print() {
  printf 'IT0_ONNXRUNTIME_LIB=%q\n' "$dir/libonnxruntime.so.1"
  printf 'IT0_SILERO_MODEL=%q\n' "$dir/silero_vad_v5.onnx"
}

if [ -s "$dir/libonnxruntime.so.1" ] && [ -s "$dir/silero_vad_v5.onnx" ] && [ "$(cat "$dir/VERSIONS" 2>/dev/null)" = "$stamp" ]; then
  print
  exit 0
fi
command -v npm >/dev/null || { echo "install-voice-models: npm not found (install Node.js and npm)" >&2; exit 1; }
mkdir -p "$dir"
stage="$(mktemp -d "$dir/.stage.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
echo "install-voice-models: fetching $stamp into $dir" >&2
# --ignore-scripts: onnxruntime-node's postinstall would fetch GPU providers; only the CPU library is used.
npm install --prefix "$stage" --no-audit --no-fund --no-save --ignore-scripts --loglevel=error \
  "onnxruntime-node@$ort_version" "@ricky0123/vad-web@$vad_version" >&2
lib="$stage/node_modules/onnxruntime-node/bin/napi-v6/linux/$arch/libonnxruntime.so.1"
model="$stage/node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx"
for f in "$lib" "$model"; do
  [ -s "$f" ] || { echo "install-voice-models: $f is missing from the npm packages" >&2; exit 1; }
done
cp "$lib" "$dir/libonnxruntime.so.1.tmp" && mv "$dir/libonnxruntime.so.1.tmp" "$dir/libonnxruntime.so.1"
cp "$model" "$dir/silero_vad_v5.onnx.tmp" && mv "$dir/silero_vad_v5.onnx.tmp" "$dir/silero_vad_v5.onnx"
# The packages carry their licence in package.json only (MIT, ISC); keep those with the files.
cp "$stage/node_modules/onnxruntime-node/package.json" "$dir/onnxruntime-node.package.json"
cp "$stage/node_modules/@ricky0123/vad-web/package.json" "$dir/vad-web.package.json"
echo "$stamp" >"$dir/VERSIONS"
print
