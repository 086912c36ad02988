#!/usr/bin/env bash
# A fresh machine in minutes: clone the committed main into a new folder, set it up with the scripts alone
# (a new virtualenv; empty RRTF, Hugging Face and XDG caches), run the README's two commands in a reduced
# form, and report every executable the sandbox runs that is not from a Debian package setup.sh installs
# (or their dependencies) -- what works here only because someone installed it by hand.
#
#   bash scripts/fresh_check.sh            # reduced: setup, a short training run, selftest, machine-dependent tests
#   bash scripts/fresh_check.sh --full     # the README's test command as it is (the whole suite)
#   FRESH_DIR=/var/tmp/x bash scripts/fresh_check.sh   # where to clone (default: a new folder under /var/tmp)
#
# Exit status 0 only when every step passed and nothing outside the scripts was found. Run it before a stop.
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
full=0; [ "${1:-}" = "--full" ] && full=1
dir="${FRESH_DIR:-$(mktemp -d /var/tmp/rrtf-fresh.XXXXXX)}"  # not /tmp: the sandbox mounts its own there
mkdir -p "$dir"
log="$dir/fresh_check.log"
failed=()
step() {  # step NAME COMMAND...: run it in the clone, log it, remember a failure
  local name="$1"; shift
  local start=$SECONDS
  echo "== $name" | tee -a "$log"
  if (cd "$dir/rrtf" && "$@") >>"$log" 2>&1; then
    echo "   ok ($((SECONDS - start)) s)" | tee -a "$log"
  else
    echo "   FAILED ($((SECONDS - start)) s): see $log" | tee -a "$log"; failed+=("$name")
  fi
}

echo "fresh check of $(git -C "$repo" rev-parse --short HEAD) in $dir (log: $log)"
rm -rf "$dir/rrtf" "$dir/cache"
git clone -q "$repo" "$dir/rrtf" || { echo "clone failed"; exit 1; }
mkdir -p "$dir/cache/rrtf" "$dir/cache/hf" "$dir/cache/xdg"
export RRTF_CACHE="$dir/cache/rrtf" HF_HOME="$dir/cache/hf" XDG_CACHE_HOME="$dir/cache/xdg" HF_HUB_OFFLINE=1
unset VIRTUAL_ENV PYTHONPATH

# The README's first command, reduced: the embedded default's model build (cold cache) and a short run.
step "setup" bash scripts/setup.sh
step "train (reduced default)" .venv/bin/python -m rrtf.train --max_problems 16 --eval_max_problems 16 --num_samples 2 \
  --num_train_epochs 1 --output_dir "$dir/out" --report_to none
# The README's second command; reduced to the tests that depend on what the machine has installed.
step "setup dev" bash scripts/setup.sh dev
step "ruff" .venv/bin/ruff check .
step "sandbox selftest (every language judges)" .venv/bin/python -m sandbox selftest
if [ $full = 1 ]; then
  step "tests (all)" .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15
else
  step "tests (machine-dependent)" .venv/bin/python -m pytest -q -p no:cacheprovider tests/sandbox/test_languages.py \
    tests/quantize/test_ct2_export.py tests/test_fresh_machine.py
fi

# What the sandbox runs must come from Debian packages that setup.sh installs, or from their dependencies.
echo "== executables the sandbox runs, and where they come from" | tee -a "$log"
read -r -a wanted <<< "$(cd "$dir/rrtf" && .venv/bin/python -m sandbox packages | tr '\n' ' ')"
closure=" $(apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
  --no-enhances "${wanted[@]}" 2>/dev/null | grep -v '^ ' | sed 's/:.*//' | sort -u | tr '\n' ' ') "
outside=0
while IFS=$'\t' read -r tool path; do
  if [ "$path" = "-" ]; then
    echo "   MISSING  $tool: not installed after setup" | tee -a "$log"; outside=1; continue
  fi
  real="$(readlink -f "$path")"
  owner="$(dpkg -S "$real" 2>/dev/null | head -1 | cut -d: -f1)"
  if [ -z "$owner" ]; then
    echo "   OUTSIDE  $tool -> $real: no Debian package owns it (installed by hand?)" | tee -a "$log"; outside=1
  elif [[ "$closure" != *" $owner "* ]]; then
    echo "   OUTSIDE  $tool -> $real: from $owner, which setup.sh does not install" | tee -a "$log"; outside=1
  else
    echo "   ok       $tool -> $real ($owner)" | tee -a "$log"
  fi
done < <(cd "$dir/rrtf" && .venv/bin/python -m sandbox packages --tools)
[ $outside = 1 ] && failed+=("executables outside the scripts")

if [ ${#failed[@]} -gt 0 ]; then
  echo "fresh check FAILED: ${failed[*]} (log: $log)"; exit 1
fi
echo "fresh check passed (log: $log)"
