#!/usr/bin/env bash
# vLLM as rrtf's backend on a lent GPU (benchmarks/vllm_gpu.py). NOT run on a GPU in the session that
# wrote it: no device was lent. From the repository root, on the device machine:
#
#   bash benchmarks/vllm_gpu.sh                  # float32 then bfloat16, with a sleep/wake round; ~5 min per dtype (estimate)
#   bash benchmarks/vllm_gpu.sh                  # again on the same machine: resumes with the dtype still missing
#
# vLLM must already be installed there: its wheel (239 MB for 0.34) is more than a call may carry, and
# it pins its own torch (vllm 0.34: torch 2.14) and transformers (< 5.23). Without it, or without a
# GPU, the script says so in one line and exits 2 before any work.
set -euo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "${OUT:-/tmp}/nvidia-smi.csv" || true
python3 benchmarks/vllm_gpu.py --sleep "$@" 2>&1 | tee "${OUT:-/tmp}/vllm_gpu.log"
