"""Checks of what the methods comparison's README paragraphs say explains its table (issue 20: "check the
explanation with one extra run, not a guess"). Each arm is one `rrtf.train` run at the comparison's
budget and seeds (rrtf.compare_methods.unit.train_config: the same config a comparison run gets) with one
thing changed, so its held-out pass@1 is read against the comparison's rows of the same seeds:

- `paper-keep-teacher-worse` (condition 2): RRTF with `--drop_if_teacher_worse false`: the prompts where a
  student sample passes and no teacher's answer does (10 of 33 per seed) are ranked too, student first;
- `paper-best-keep-teacher-worse` (condition 2): the same with `--method rrtf_best`: those prompts also get
  the best passing student sample as L_ft's target;
- `paper-strong-teacher-only` (condition 2): RRTF with the `default` teacher only (the weak teacher's answers,
  all failing, are not ranked);
- `paper-students-only` (condition 2): RRTF on the same problems with no teacher at all.

(Condition 3's check is a method of the comparison itself: `--conditions no_teacher --methods rrtf_best`.)

    python benchmarks/methods_checks.py [--seeds 42 1 2 3 4] [--arms ...]

Runs in OUT/ARM-seedS (default OUT outputs/compare-methods-checks; rrtf.train resumes a killed run), one
process each; writes benchmarks/results/methods_checks.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARMS = {  # arm -> (condition, method, RRTFConfig fields changed)
    "paper-keep-teacher-worse": ("paper", "rrtf", {"drop_if_teacher_worse": False}),
    "paper-best-keep-teacher-worse": ("paper", "rrtf_best", {"drop_if_teacher_worse": False}),
    "paper-strong-teacher-only": ("paper", "rrtf", {"teachers": ["dataset:default"]}),
    "paper-students-only": ("paper", "rrtf", {"teachers": []}),
}


def run_one(arm: str, seed: int, out: Path) -> dict:
    import dataclasses

    from rrtf.compare_methods.config import CompareMethodsConfig
    from rrtf.compare_methods.unit import train_config
    from rrtf.train import run

    condition, method, changes = ARMS[arm]
    config = train_config(CompareMethodsConfig(disable_tqdm=True), condition, seed, out / f"{arm}-seed{seed}", method)
    metrics = run(dataclasses.replace(config, **changes))
    return {"arm": arm, "seed": seed, "condition": condition, "method": method, "changes": changes,
            "pass_at_1_before": metrics["eval_before"]["pass@1"], "pass_at_1": metrics["eval_after"]["pass@1"],
            "rank_stats": metrics.get("rank_stats")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4])
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--out", default="outputs/compare-methods-checks")
    parser.add_argument("--comparison", default="benchmarks/results/compare_methods.jsonl", help="The comparison's records (RRTF's rows).")
    parser.add_argument("--one", nargs=2, metavar=("ARM", "SEED"), help=argparse.SUPPRESS)  # a child process's unit
    args = parser.parse_args()
    from rrtf.compare_methods.config import BASELINE
    from rrtf.compare_methods.report import mean_sd, paired

    out = Path(args.out)
    if args.one:
        arm, seed = args.one[0], int(args.one[1])
        (out / f"{arm}-seed{seed}.json").write_text(json.dumps(run_one(arm, seed, out), default=str))
        return
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for arm in args.arms:
        for seed in args.seeds:
            done = out / f"{arm}-seed{seed}.json"
            if not done.exists():
                env = {**os.environ, "OMP_NUM_THREADS": "2", "TOKENIZERS_PARALLELISM": "false"}
                subprocess.run([sys.executable, __file__, "--out", str(out), "--one", arm, str(seed)], check=True, env=env, cwd=ROOT)
            records.append(json.loads(done.read_text()))
            print(f"{arm} seed {seed}: pass@1 {records[-1]['pass_at_1_before']:.3f} -> {records[-1]['pass_at_1']:.3f}", flush=True)
    # Paired, seed by seed, with the comparison's own RRTF runs of the same condition (its results.jsonl).
    rrtf = {(r["condition"], r["seed"]): r["pass_at_1"] for r in map(json.loads, (ROOT / args.comparison).read_text().splitlines())
            if r["method"] == BASELINE}
    print(f"\n| arm | held-out pass@1 (mean ± sd over seeds {' '.join(map(str, args.seeds))}) | vs RRTF, paired (mean; p; win/tie/loss) |"
          "\n|---|---:|---:|")
    summary = {}
    for arm in args.arms:
        mine = [r for r in records if r["arm"] == arm]
        mean, sd = mean_sd([r["pass_at_1"] for r in mine])
        vs = paired([r["pass_at_1"] - rrtf[(r["condition"], r["seed"])] for r in mine if (r["condition"], r["seed"]) in rrtf])
        summary[arm] = {"mean": mean, "sd": sd, "values": [r["pass_at_1"] for r in mine], "vs_rrtf": vs}
        print(f"| {arm} | {mean:.3f} ± {sd:.3f} | {vs['mean_diff']:+.3f} (p {vs['p']:.2f}; {vs['wins']}/{vs['ties']}/{vs['losses']}) |")
    result = {"machine": platform.node(), "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(), "seeds": args.seeds,
              "summary": summary, "records": records}
    path = ROOT / "benchmarks" / "results" / "methods_checks.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
