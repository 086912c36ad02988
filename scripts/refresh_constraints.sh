#!/usr/bin/env bash
# Refresh constraints.txt: the exact versions that scripts/setup.sh installs (and CI tests), resolved anew from the
# lower bounds in pyproject.toml in a throwaway virtualenv. Run it when a dependency must move (a fix, a new lower
# bound), then run the README's test command; commit both. Usage: bash scripts/refresh_constraints.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" build' EXIT  # build/: what pip's non-editable install leaves in the tree
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q torch==2.13.0 2> >(grep -v "is ignored" >&2)
"$tmp/venv/bin/pip" install -q ".[dev]" 2> >(grep -v "is ignored" >&2)
{
  echo "# Exact versions for scripts/setup.sh (pip -c): what CI tests. pyproject.toml keeps lower bounds for people"
  echo "# installing into their own environments. Refresh: bash scripts/refresh_constraints.sh ($(date -u +%Y-%m-%d))."
  echo "# torch is not here: setup.sh pins it (a CPU build), and a GPU machine brings its own CUDA build."
  "$tmp/venv/bin/pip" freeze --exclude-editable 2>/dev/null | grep -v -i -E "^(rrtf|torch|nvidia-|triton)([=@ ]|$)" | sort -f
} > constraints.txt
echo "wrote constraints.txt ($(grep -c '==' constraints.txt) pins)"
