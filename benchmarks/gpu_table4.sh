#!/usr/bin/env bash
# Table 4 at StarCoder-15B's shape on a lent GPU (benchmarks/gpu_table4.py). NOT run in the session
# that wrote it: no device was lent. From the repository root, on the device machine:
#
#   bash benchmarks/gpu_table4.sh             # 1st command: transformers float16, then CTranslate2, GPTQ...
#   bash benchmarks/gpu_table4.sh             # 2nd command (same warm machine): resumes with the next build
#
# The image there (Python 3.12, torch cu130) lacks ctranslate2, gptqmodel, optimum and trl: carry them
# as wheels in .whl/ (see docs/quantize.md, "GPU"); they are installed into /tmp/site, torch untouched.
set -euo pipefail
if compgen -G ".whl/*" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -3 || true
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "${OUT:-/tmp}/nvidia-smi.csv"
python3 benchmarks/gpu_table4.py "$@" 2>&1 | tee "${OUT:-/tmp}/gpu_table4.log"
