"""`python -m quantize bench`: the unquantised model, each CTranslate2 build and each GPTQ build, side
by side in one run on the same prompts -- size, peak memory, time to first token, ms/token and
tokens/s at batch 1 and a larger batch, and greedy pass@1 judged in the sandbox.

    python -m quantize bench --model outputs/rrtf-default --out outputs/quantize/bench.json
    python -m quantize bench --random_init starcoderbase-1b --builds transformers:float32 ct2:int8 --dataset none

Each build is exported once (reused while the source weights are unchanged) and measured in a
process of its own (quantize/measure.py), so that its peak memory is its own. Every finished build
is one line of WORK_DIR/OUT.rows.jsonl: a killed benchmark resumes with the next build. The outputs
are OUT (JSON: machine, setup, rows), OUT.md (the table) and OUT.png (the plot).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from quantize.builds import Build, check_build_runs, default_builds, parse_build, prepare_build, weights_bytes
from quantize.config import BenchConfig
from quantize.report import add_ratios, machine, markdown_table, plot
from sandbox.base.errors import RecordError
from sandbox.base.store import JsonlStore, write_state


def resolve_device(device: str) -> str:
    if device != "auto":
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ValueError("--device cuda: no CUDA device is visible")
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def source_model(cfg: BenchConfig, work: Path, device: str) -> tuple[Path, str]:
    """(plain checkpoint to benchmark, how it was obtained)."""
    if cfg.random_init:
        from quantize.shapes import build_random_model

        dtype = "float16" if device == "cuda" else "float32"
        path = build_random_model(cfg.random_init, work / f"source-{cfg.random_init}", dtype=dtype, device=device)
        return path, f"randomly initialised {cfg.random_init} ({dtype})"
    from quantize.source import resolve_source

    model = cfg.model
    if model is None:
        from rrtf.tiny import ensure_tiny_model

        model = str(ensure_tiny_model("warm"))
    src = resolve_source(model, work_dir=work, tuning_method=cfg.tuning_method, base_model=cfg.base_model)
    return src.model_dir, src.describe()


def bench_prompts(cfg: BenchConfig, count: int) -> list[str]:
    """The latency prompts: the first problems of the pass@1 set (tiny-tasks held-out if none), as
    their prompt strategy asks them."""
    from rrtf.datasets import load_dataset
    from rrtf.prompts import get_strategy

    ds = load_dataset(cfg.dataset or "tiny-tasks:heldout")
    strategy = get_strategy(ds.strategy)
    problems = ds.problems[:count]
    if not problems:
        raise ValueError(f"dataset {cfg.dataset!r} has no problems")
    return [strategy.prompt(p, cfg.prompt_template) for p in problems]


def setup_of(cfg: BenchConfig, source: Path, device: str) -> dict[str, Any]:
    """What a stored row depends on (a resumed benchmark must match it)."""
    from quantize.source import checkpoint_fingerprint

    keys = ("threads", "new_tokens", "batch_sizes", "repeats", "dataset", "max_problems", "max_new_tokens", "prompt_template",
            "group_size", "desc_act", "calibration_dataset", "calibration_samples", "gptq_dtype")
    return {"source": str(source), "fingerprint": checkpoint_fingerprint(source), "device": device,
            **{k: getattr(cfg, k) for k in keys}}


def measure_in_subprocess(job: dict[str, Any], job_path: Path, threads: int) -> dict[str, Any]:
    job_path.write_text(json.dumps(job))
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    proc = subprocess.run([sys.executable, "-m", "quantize.measure", str(job_path)], env=env, capture_output=True,
                          text=True)
    found = [line for line in proc.stdout.splitlines() if line.startswith("RRTF_MEASURE ")]
    if proc.returncode != 0 or not found:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"measuring build {job['spec']} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(found[-1].removeprefix("RRTF_MEASURE "))


def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    builds = [parse_build(b) for b in (cfg.builds or default_builds(device))]
    for build in builds:
        check_build_runs(build, device)
    if len({b.spec for b in builds}) != len(builds):
        raise ValueError(f"--builds lists a build twice: {[b.spec for b in builds]}")
    out = Path(cfg.out)
    work = Path(cfg.work_dir) if cfg.work_dir else out.with_name(out.stem + ".builds")
    work.mkdir(parents=True, exist_ok=True)
    dataset = None if cfg.random_init else cfg.dataset  # random weights pass nothing
    cfg.dataset = dataset
    prompts = bench_prompts(cfg, max(max(cfg.batch_sizes), cfg.repeats))
    source, how = source_model(cfg, work, device)
    setup = setup_of(cfg, source, device)
    calibration = None
    if any(b.kind == "gptq" for b in builds):
        from quantize.gptq import calibration_texts

        calibration = calibration_texts(cfg.calibration_dataset, cfg.calibration_samples, cfg.prompt_template)
    gptq_opts: dict[str, Any] = {"group_size": cfg.group_size, "desc_act": cfg.desc_act, "dtype": cfg.gptq_dtype}
    if cfg.random_init:
        gptq_opts["mock"] = True  # random weights: latency and memory only, no Hessian solve
    if device == "cuda":
        gptq_opts.update(device="cuda", pack_impl="gpu")
    rows_path = work / f"{out.stem}.rows.jsonl"
    store = JsonlStore(rows_path, key=lambda r: r["build"])
    try:
        for line, rec in enumerate(store.records, 1):
            if rec.get("setup") != setup:
                raise RecordError(f"{rows_path}:{line}", "setup", "written by a benchmark of another model or settings; "
                                  "use another --out or delete the file")
        bar = tqdm(builds, desc="bench", unit="build")
        for build in bar:
            if build.spec in store.done:
                continue
            bar.set_postfix_str(f"{build.spec}: export")
            path = prepare_build(build, source, work, gptq=gptq_opts, calibration=calibration)
            bar.set_postfix_str(f"{build.spec}: measure")
            job = {"spec": build.spec, "kind": build.kind, "precision": build.precision, "compute_type": build.compute_type,
                   "path": str(path), "device": device, "threads": cfg.threads, "new_tokens": cfg.new_tokens,
                   "batch_sizes": cfg.batch_sizes, "repeats": cfg.repeats, "prompts": prompts, "dataset": dataset,
                   "max_problems": cfg.max_problems, "max_new_tokens": cfg.max_new_tokens, "prompt_template": cfg.prompt_template,
                   "samples_file": str(work / f"{build.dir_name}.{build.compute_type}.samples.jsonl"),
                   "sandbox": asdict(cfg.sandbox_config())}
            row = measure_in_subprocess(job, work / f"{build.dir_name}.job.json", cfg.threads)
            row = {"build": build.spec, "kind": build.kind, "label": build.label, "precision": _precision(build, device),
                   "weights_mb": round(weights_bytes(path) / 2**20, 1), "path": str(path), **row, "setup": setup,
                   "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
            store.write_many([row])
            if not cfg.keep_builds and path != source:
                shutil.rmtree(path, ignore_errors=True)  # measured: its row is all that is needed now
        rows = [dict(store.records[[r["build"] for r in store.records].index(b.spec)]) for b in builds]
    finally:
        store.close()
    return write_outputs(cfg, rows, setup, how, device, out)


def _precision(build: Build, device: str) -> str:
    if build.kind != "ct2":
        return build.precision
    from quantize.ct2 import runs_as

    ran = build.compute_type if build.compute_type not in ("default", "auto") else runs_as(build.precision, device)
    return build.precision if ran == build.precision else f"{build.precision} (runs as {ran})"


def write_outputs(cfg: BenchConfig, rows: list[dict[str, Any]], setup: dict[str, Any], how: str, device: str, out: Path) -> dict[str, Any]:
    from quantize.ct2 import describe_hardware

    for r in rows:
        r.pop("setup", None)
    add_ratios(rows)
    result = {"machine": machine(), "device": device, "ctranslate2_hardware": describe_hardware(device), "model": how,
              "setup": setup, "config": {k: v for k, v in asdict(cfg).items() if not k.startswith("_")}, "rows": rows}
    write_state(out, result)
    table = markdown_table(rows, cfg.batch_sizes)
    header = (f"Model: {how}. Device: {device}, {cfg.threads or os.cpu_count()} thread(s); {result['ctranslate2_hardware']}. "
              f"Latency: greedy, exactly {cfg.new_tokens} new tokens, median of {cfg.repeats}.\n\n")
    out.with_suffix(".md").write_text(header + table)
    plot(rows, cfg.batch_sizes, out.with_suffix(".png"))
    print(header + table)
    print(f"wrote {out}, {out.with_suffix('.md')} and {out.with_suffix('.png')}")
    return result


__all__ = ["bench_prompts", "measure_in_subprocess", "resolve_device", "run_bench", "source_model", "write_outputs"]
