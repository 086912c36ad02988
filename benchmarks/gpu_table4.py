"""PanGu-Coder2's Table 4 at StarCoder-15B's shape on one GPU: transformers float16 against
CTranslate2 int8 and GPTQ int4/int8 -- memory, ms/token, tokens/s at batch 1 and 8 -- in one run.

Prepared for a lent H200 (141 GB); NOT run in the session that wrote it (no device was lent).

    python benchmarks/gpu_table4.py                 # on the GPU machine, from the repository root
    python benchmarks/gpu_table4.py --dry_run       # the same steps on this CPU with the tiny shape

Steps (each build is one row of the resumable rows file: a second invocation continues where a
killed or timed-out one stopped, so the whole table can be filled in two 10-minute commands):
  1. a randomly initialised model of StarCoder-15B's shape (40 layers, 6144 wide, multi-query),
     built on the GPU directly in float16 and saved once (31 GB; latency and memory do not depend on
     the weights, and no pretrained weights can be downloaded);
  2. `python -m quantize bench --random_init starcoder-15b --device cuda` with the builds in priority
     order -- transformers:float16, ct2:int8_float16, gptq:4, gptq:8 -- each exported, measured in
     its own process and deleted again (keep_builds=false: 31 + 16 + 9 + 16 GB would not fit a 64 GB
     disk at once). GPTQ uses GPTQModel's mock quantisation (real 4/8-bit layout and kernels, no
     Hessian solve: the weights are random anyway) and packs on the GPU.
Expected time on an H200 host (estimates, not measured): build + save ~2 min, transformers ~1.5 min,
CTranslate2 conversion (CPU, numpy) ~4 min + 1 min, each GPTQ build ~3-4 min.

A preflight first converts and runs a tiny model with each library on the device and skips (and
records, in .skipped.json) what cannot run there -- e.g. CTranslate2 4.8.5's CUDA build loads
libcublas.so.12, which an image with only CUDA 13 libraries lacks.

Results: benchmarks/results/table4_gpu_<shape>.json (+ .md, .png, .skipped.json), naming the GPU;
copied to $OUT when that variable is set (the lent machine's outputs come back from there).
On this workplace's H200 image, first carry the wheels it lacks (benchmarks/gpu_table4.sh).
Goals (issue 8): CT2 int8 >= 2.27x faster than float16 at <= 0.5x its memory; GPTQ int4 at <= 0.30x.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BUILDS = ["transformers:float16", "ct2:int8_float16", "gptq:4", "gptq:8"]


def preflight(builds: list[str], device: str, work: Path) -> tuple[list[str], dict[str, str]]:
    """The builds this machine can run, and why the others cannot -- found in seconds on a tiny model,
    before minutes go into a 15B export (e.g. CTranslate2 4.8's CUDA build needs libcublas.so.12)."""
    skipped: dict[str, str] = {}
    kinds = {b.split(":")[0] for b in builds}
    if "ct2" in kinds:
        try:
            from quantize.ct2 import export_ct2
            from quantize.shapes import build_random_model
            from rrtf.backends import build_backend

            tiny = build_random_model("tiny", work / "preflight-tiny")
            ct2_dir = export_ct2(tiny, work / "preflight-tiny-ct2", "int8_float16" if device == "cuda" else "int8", force=True)
            build_backend("ct2", model_dir=ct2_dir, device=device).generate(["def f():"], max_new_tokens=2)
        except Exception as exc:  # noqa: BLE001 - any failure here is the reason to skip, recorded
            skipped.update({b: f"CTranslate2 on {device}: {type(exc).__name__}: {str(exc)[:300]}" for b in builds if b.startswith("ct2")})
    if "gptq" in kinds:
        try:
            import gptqmodel  # noqa: F401
            import optimum  # noqa: F401
        except ImportError as exc:
            skipped.update({b: f"GPTQ: {exc}" for b in builds if b.startswith("gptq")})
    return [b for b in builds if b not in skipped], skipped


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="starcoder-15b")
    ap.add_argument("--builds", nargs="+", default=BUILDS)
    ap.add_argument("--work_dir", default="/tmp/rrtf-table4")
    ap.add_argument("--new_tokens", type=int, default=64)
    ap.add_argument("--dry_run", action="store_true", help="tiny shape on the CPU: checks every step here")
    args = ap.parse_args(argv)

    from quantize.bench import run_bench
    from quantize.config import BenchConfig
    from sandbox.base.store import write_state

    if args.dry_run:
        shape, device, builds = "tiny", "cpu", ["transformers:float32", "ct2:int8", "gptq:4"]
        out = Path(args.work_dir) / "dry_run" / "table4_cpu_tiny.json"
    else:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device visible: run on the GPU machine, or pass --dry_run")
        shape, device, builds = args.shape, "cuda", args.builds
        out = REPO / "benchmarks" / "results" / f"table4_gpu_{shape}.json"
    builds, skipped = preflight(builds, device, Path(args.work_dir))
    for build, why in skipped.items():
        print(f"skipping {build}: {why}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_state(out.with_name(out.stem + ".skipped.json"), skipped)
    if not builds:
        return 1
    cfg = BenchConfig(random_init=shape, device=device, builds=builds, out=str(out), dataset="none", threads=0,
                      work_dir=str(Path(args.work_dir) / shape), new_tokens=args.new_tokens, batch_sizes=[1, 8], repeats=3,
                      group_size=128 if shape != "tiny" else 32, calibration_samples=8, keep_builds=False)
    result = run_bench(cfg)
    if os.environ.get("OUT"):
        for src in (out, out.with_suffix(".md"), out.with_suffix(".png"), Path(cfg.work_dir) / f"{out.stem}.rows.jsonl",
                    out.with_name(out.stem + ".skipped.json")):
            if src.exists():
                shutil.copy(src, Path(os.environ["OUT"]) / src.name)
    rows = {r["build"]: r for r in result["rows"]}
    base = rows.get(builds[0], {})
    for name, r in rows.items():
        print(f"{name:<22} speed x{r.get('speedup_b1', '-')} (b=1), x{r.get('speedup_b8', '-')} (b=8); "
              f"memory x{r.get('peak_memory_ratio', '-')} of {base.get('build', '?')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
