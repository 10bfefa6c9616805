#!/usr/bin/env bash
# Installs the pinned Claude Code CLI (@anthropic-ai/claude-code from npm) into a cache and prints the path
# of its `claude` binary on stdout. The real-CLI test of the claude_code_cli engine runs it
# (cmd/it0/claudecode_real_test.go, through IT0_TEST_CLAUDE). Idempotent: a cached install of the pinned
# version is reused without touching the network.
#
#   IT0_CLAUDE_CODE_VERSION  version to install (default below; keep it 2.1.x, what IT0 is tested with)
#   IT0_CLAUDE_CODE_CACHE    cache directory (default ~/.cache/it0/claude-code)
set -euo pipefail

version="${IT0_CLAUDE_CODE_VERSION:-2.1.332}"
dir="${IT0_CLAUDE_CODE_CACHE:-$HOME/.cache/it0/claude-code}/$version"

# works prints the path of a claude binary in the install that answers --version with the pinned version.
works() {
  # The package's postinstall copies the native binary over bin/claude.exe; should npm ever skip install
  # scripts, the platform package's binary is the same file.
  local c
  for c in "$dir/node_modules/.bin/claude" "$dir"/node_modules/@anthropic-ai/claude-code-linux-*/claude; do
    if [ -x "$c" ] && "$c" --version 2>/dev/null | grep -q "^$version "; then
      echo "$c"
      return 0
    fi
  done
  return 1
}

if works; then
  exit 0
fi
command -v npm >/dev/null || { echo "install-claude-code: npm not found (install Node.js and npm)" >&2; exit 1; }
mkdir -p "$dir"
echo "install-claude-code: installing @anthropic-ai/claude-code@$version into $dir" >&2
npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error "@anthropic-ai/claude-code@$version" >&2
works || { echo "install-claude-code: claude $version did not install (no working binary under $dir)" >&2; exit 1; }
