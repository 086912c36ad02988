#!/usr/bin/env bash
# Set up a fresh machine: a virtualenv with a CPU torch (no CUDA wheels), the project, and the sandbox's
# Debian packages (bubblewrap and the languages' toolchains). Usage: bash scripts/setup.sh [dev]
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
# constraints.txt: the exact versions CI tests (pyproject.toml keeps only lower bounds, for other environments);
# refresh it with scripts/refresh_constraints.sh.
quiet .venv/bin/pip install -q -c constraints.txt -e ".${extra}"
.venv/bin/python -c "import rrtf, sandbox, transformers, trl, peft"
# The sandbox's Debian packages -- bubblewrap (strong isolation) and the toolchain of every language module
# (sandbox/languages/*.py: LANGUAGE.debian_packages) -- installed only where missing, so a machine that has them pays
# one dpkg query. `python -m sandbox selftest` then proves each language judges (a right and a wrong answer).
read -r -a wanted <<< "$(.venv/bin/python -m sandbox packages | tr '\n' ' ')"
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" && continue
  [ "$pkg" = nodejs ] && command -v node >/dev/null && continue  # node from another source (nodesource, nvm) counts
  missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (the sandbox's isolation and language toolchains, from Debian)"
  (apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || (apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}")) >/dev/null
fi
