"""The rollout on Ray against the local engine, in one run: candidates generated/s and judged/s with 1, 2
and 4 actors of each kind (rrtf/rollout/ray_engine.py), the whole rollout (generate, then judge) with the
judges fed while generation goes on, and Ray's own cost per call. Figures for docs/distributed.md, which
projects a cluster from the per-actor rates.

- Generation: the embedded default model (the tiny StarCoder, CPU) samples `--samples` completions for each
  of `--problems` held-out problems (`--max-new-tokens`), in batches of 8 prompts, through
  `rrtf.rollout.generate` on each engine. The local engine uses every core for one model (torch threads);
  each generator actor is one process with one thread, as Ray places a one-CPU actor.
- Judging: those candidates judged by `check_many`: the local `Sandbox` with k workers against k judge
  actors of one sandbox worker each.
- Overhead: the median round trip of an empty call to an actor, and the cost of a 16-job chunk beyond
  judging it (one judge actor of one worker against a local pool of one worker).
- Each engine's actors are started before its clock starts (startup is reported apart), and every
  engine's candidates are checked equal to the local engine's (the same records; exit 1 if not).

    python benchmarks/ray_rollout.py --out benchmarks/results/ray_rollout.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import ray
import torch

from rrtf.backends import build_backend
from rrtf.datasets import load_dataset
from rrtf.evaluate.cli import default_model_path
from rrtf.options import RolloutOptions
from rrtf.rollout import RolloutConfig, Stage, ask, candidate_key, generate
from rrtf.rollout.engine import LocalEngine, engine_from
from rrtf.rollout.judge import judge
from sandbox.base.store import JsonlStore
from sandbox.config import SandboxConfig


def rollout_once(engine, backend, asked, args, *, workers: int, with_judge: bool) -> dict:
    """Generate (and judge) on `engine`; rates and the candidates."""
    cfg = RolloutConfig(max_new_tokens=args.max_new_tokens, seed=0, batch_size=8, progress=False)
    stage = Stage("sampled", backend, args.samples, 0.8)
    with engine.sandbox(SandboxConfig(workers=workers)) as sandbox:
        warm = JsonlStore(None, key=candidate_key)  # actors up and the model fetched before the clock starts
        began = time.perf_counter()
        generate(asked[:8], stage, cfg, warm, scope="warm", engine=engine)
        startup = time.perf_counter() - began
        store = JsonlStore(None, key=candidate_key)
        began, cpu = time.perf_counter(), time.process_time()
        generate(asked, stage, cfg, store, scope="bench", engine=engine)
        gen_s, gen_cpu = time.perf_counter() - began, time.process_time() - cpu
        from rrtf.records import Candidate

        candidates = [Candidate.from_record(r) for r in store.records]
        judge_s = None
        if with_judge:
            began = time.perf_counter()
            verdicts = judge(asked, candidates, sandbox, None, progress=False)
            judge_s = time.perf_counter() - began
        else:
            verdicts = None
    return {"startup_s": startup, "generate_s": gen_s, "generate_driver_cpu_s": gen_cpu, "judge_after_generate_s": judge_s,
            "candidates": candidates, "verdicts": verdicts}


def judge_only(engine, candidates, asked, workers: int) -> tuple[float, float]:
    """(seconds, this process's CPU seconds) to judge `candidates`."""
    with engine.sandbox(SandboxConfig(workers=workers)) as sandbox:
        judge(asked[:2], [c for c in candidates if c.task_id in {a.task_id for a in asked[:2]}], sandbox, None, progress=False)  # warm
        began, cpu = time.perf_counter(), time.process_time()
        judge(asked, candidates, sandbox, None, progress=False)
        return time.perf_counter() - began, time.process_time() - cpu


def call_overhead(engine) -> float:
    """Median seconds of an empty round trip to a generator actor (Ray's per-call cost)."""
    actor = engine._generator_pool().actors[0]
    times = []
    for _ in range(50):
        began = time.perf_counter()
        ray.get(actor.ready.remote())
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--machine", default="development VM, 2 cores, no GPU")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ray_rollout.json"))
    args = parser.parse_args()
    load_start = os.getloadavg()
    problems = load_dataset("heldout").problems[: args.problems]
    asked = ask("heldout", problems)
    backend = build_backend("transformers", model_name_or_path=default_model_path())
    rows, reference = [], None
    ray.init(num_cpus=max(os.cpu_count() or 1, 2 * max(args.actors) + 2), include_dashboard=False, log_to_driver=False)
    try:
        # 0: the local engine, with torch on one thread (what one actor gets: Ray's overhead alone) and on every core
        for k, threads in [(0, 1), (0, os.cpu_count() or 1), *((k, 1) for k in args.actors)]:
            torch.set_num_threads(threads)
            engine = LocalEngine() if k == 0 else engine_from(RolloutOptions(rollout="ray", ray_generators=k, ray_judges=k))
            with engine:
                full = rollout_once(engine, backend, asked, args, workers=1 if k else 2, with_judge=True)
                # local: a pool of 1, 2, 4 workers; ray: k judge actors of one worker each
                judged = {w: judge_only(engine, full["candidates"], asked, w) for w in args.actors} if k == 0 and threads == 1 else \
                    {} if k == 0 else \
                    {k: judge_only(engine, full["candidates"], asked, 1)}
                overhead = call_overhead(engine) if k else None
            keyed = sorted((c.task_id, c.index, c.code) for c in full["candidates"])
            reference = reference or keyed
            n = len(full["candidates"])
            rows.append({"engine": "local" if k == 0 else "ray", "actors": k, "torch_threads": threads,
                         "sandbox_workers_per_judge": 1 if k else None,
                         "candidates": n, "startup_s": round(full["startup_s"], 2),
                         "generated_per_s": round(n / full["generate_s"], 2),
                         "judged_per_s": {str(w): round(n / s, 1) for w, (s, _) in judged.items()},
                         # the driver's own CPU per 1000 candidates (ray: what bounds one driver; local: everything)
                         "driver_cpu_ms_per_candidate_generated": round(1e3 * full["generate_driver_cpu_s"] / n, 3),
                         "driver_cpu_ms_per_candidate_judged": {str(w): round(1e3 * c / n, 3) for w, (_, c) in judged.items()},
                         "generate_then_judge_s": round(full["generate_s"] + full["judge_after_generate_s"], 2),
                         "call_round_trip_ms": round(overhead * 1e3, 3) if overhead else None,
                         "same_candidates_as_local": keyed == reference})
            print(rows[-1], flush=True)
    finally:
        ray.shutdown()
    local = rows[0]
    print(f"\n{'engine':<8} {'actors':>6} {'threads':>7} {'gen/s':>8} {'× local 1t':>10} {'judged/s':>9} {'× local':>8} "
          f"{'gen+judge s':>12} {'same':>5}")
    for r in rows:
        k = max(1, r["actors"])
        judged = r["judged_per_s"].get(str(k))
        ratio = f"{judged / local['judged_per_s'][str(k)]:.2f}" if judged and r["actors"] else ""
        print(f"{r['engine']:<8} {r['actors']:>6} {r['torch_threads']:>7} {r['generated_per_s']:>8} "
              f"{r['generated_per_s'] / local['generated_per_s']:>10.2f} {judged or '':>9} {ratio:>8} {r['generate_then_judge_s']:>12} "
              f"{r['same_candidates_as_local']!s:>5}")
    out = {"benchmark": "ray_rollout", "machine": f"{args.machine} ({platform.node()}, {platform.machine()}, {os.cpu_count()} cpus)",
           "ray": ray.__version__, "problems": args.problems, "samples_per_problem": args.samples, "max_new_tokens": args.max_new_tokens,
           "load_average_at_start": load_start, "load_average_at_end": os.getloadavg(), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(r["same_candidates_as_local"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
