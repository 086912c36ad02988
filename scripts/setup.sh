#!/usr/bin/env bash
# Set up a fresh machine: a virtualenv with a CPU torch (no CUDA wheels), the project, and bubblewrap
# for the sandbox's strong isolation. Usage: bash scripts/setup.sh [dev]
set -euo pipefail
cd "$(dirname "$0")/.."
extra=""
[ "${1:-}" = "dev" ] && extra="[dev]"
[ -x .venv/bin/python ] || python3 -m venv .venv
# torch first and pinned: with 2.13.0 present, the project's "torch>=2.4" installs nothing more.
# On a GPU machine install the torch build for your CUDA first and this line is a no-op.
# (pip's stderr is filtered of this machine's noisy "Location ... is ignored" index warnings only)
quiet() { "$@" 2> >(grep -v "is ignored" >&2); }
.venv/bin/python -c "import torch" 2>/dev/null || quiet .venv/bin/pip install -q torch==2.13.0
quiet .venv/bin/pip install -q -e ".${extra}"
.venv/bin/python -c "import rrtf, sandbox, transformers, trl, peft"
if ! command -v bwrap >/dev/null; then
  echo "installing bubblewrap (the sandbox's strong isolation)"
  (apt-get install -y -qq bubblewrap || (apt-get update -qq && apt-get install -y -qq bubblewrap)) >/dev/null
fi
# Toolchains of the sandbox's compiled languages (HumanEvalPack Go, Rust, JavaScript), from Debian:
# installed only where missing, so a machine that has them pays one dpkg query.
toolchains=(golang-go golang-github-stretchr-testify-dev rustc cargo librust-rand-dev librust-regex-dev librust-md5-dev nodejs)
missing=()
for pkg in "${toolchains[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# nodejs from another source (nodesource, nvm) counts as present
if [ ${#missing[@]} -gt 0 ] && command -v node >/dev/null; then missing=("${missing[@]/nodejs}"); fi
read -r -a missing <<< "${missing[*]}"
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (the sandbox's Go, Rust and JavaScript toolchains)"
  (apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || (apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}")) >/dev/null
fi
