"""Latency and memory of the quantised builds at StarCoderBase-1B's shape on this CPU (randomly
initialised weights: speed and memory do not depend on them), at 2 threads and at 1 thread, through
`python -m quantize bench` -- the same code a user runs -- in one run per thread count.

    python benchmarks/quantize_latency.py                       # 1B shape, threads 2 then 1
    python benchmarks/quantize_latency.py --shape tiny --threads 1 --new_tokens 8   # a quick check
    python benchmarks/quantize_latency.py --builds transformers:float32 ct2:int8 --rounds 2 --tag _pair

The machine is shared: `--rounds 2` measures every build twice, the second time in reverse order,
so that a load that drifts during the run favours no build.

Goal (issue 8): CTranslate2 int8 >= 3x the tokens/s of transformers float32 at <= 0.5x its memory.
Writes benchmarks/results/quantize_latency_<shape>_cpu_t<N>.json (+ .md, .png) per thread count and
benchmarks/results/quantize_latency_<shape>_cpu.json with the ratios against the goal.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sandbox.base.store import write_state  # noqa: E402

RESULTS = Path(__file__).parent / "results"
BUILDS = ["transformers:float32", "transformers:bfloat16", "ct2:int8", "ct2:int8_float32", "gptq:8", "gptq:4"]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="starcoderbase-1b")
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--builds", nargs="+", default=BUILDS)
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure every build this many times, the order reversed each round (a shared machine's load drifts)")
    ap.add_argument("--tag", default="", help="suffix of the result files (several runs side by side)")
    ap.add_argument("--new_tokens", type=int, default=32)
    ap.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work_dir", default="outputs/bench-work")
    args = ap.parse_args(argv)

    from quantize.bench import run_bench
    from quantize.config import BenchConfig

    big = max(args.batch_sizes)
    summary: dict = {"shape": args.shape, "goal": "ct2 int8 >= 3x transformers float32 tokens/s at <= 0.5x its peak memory", "runs": []}
    for threads in args.threads:
        for r in range(args.rounds):
            builds = args.builds if r % 2 == 0 else args.builds[::-1]
            suffix = f"{args.tag}" + (f"_r{r}" if args.rounds > 1 else "")
            out = RESULTS / f"quantize_latency_{args.shape}_cpu_t{threads}{suffix}.json"
            load = os.getloadavg()
            result = run_bench(BenchConfig(random_init=args.shape, builds=builds, device="cpu", threads=threads, dataset="none",
                                           new_tokens=args.new_tokens, batch_sizes=args.batch_sizes, repeats=args.repeats,
                                           work_dir=args.work_dir, out=str(out), group_size=128 if args.shape != "tiny" else 32,
                                           calibration_samples=16))
            rows = {row["build"]: row for row in result["rows"]}
            base = rows.get("transformers:float32", {})
            ct2 = rows.get("ct2:int8", {})
            if ct2 and base:  # ratios against transformers float32, whatever the order measured in
                ct2 = {**ct2, "speedup_b1": round(ct2["tokens_per_s"] / base["tokens_per_s"], 2),
                       f"speedup_b{big}": round(ct2[f"tokens_per_s_b{big}"] / base[f"tokens_per_s_b{big}"], 2),
                       "peak_memory_ratio": round(ct2["peak_memory_mb"] / base["peak_memory_mb"], 3)}
            run = {"threads": threads, "round": r, "order": builds, "load_average_before": load, "load_average_after": os.getloadavg(),
                   "result": out.name, "ct2_int8_speedup_b1": ct2.get("speedup_b1"), f"ct2_int8_speedup_b{big}": ct2.get(f"speedup_b{big}"),
                   "ct2_int8_peak_memory_ratio": ct2.get("peak_memory_ratio"),
                   "transformers_float32": {k: base.get(k) for k in ("tokens_per_s", f"tokens_per_s_b{big}", "peak_memory_mb")},
                   "ct2_int8": {k: ct2.get(k) for k in ("tokens_per_s", f"tokens_per_s_b{big}", "peak_memory_mb")}}
            run["goal_met"] = bool(ct2 and (ct2.get(f"speedup_b{big}") or 0) >= 3 and (ct2.get("peak_memory_ratio") or 9) <= 0.5)
            summary["runs"].append(run)
            summary["machine"] = result["machine"]
    path = RESULTS / f"quantize_latency_{args.shape}_cpu{args.tag}.json"
    write_state(path, summary)
    print(json.dumps(summary["runs"], indent=2))
    print(f"wrote {path}")
    return summary


if __name__ == "__main__":
    main()
