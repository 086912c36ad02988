"""HumanEval+ judged by this sandbox and by evalplus's own evaluator, same samples, same run.

Samples: the 164 HumanEval+ canonical solutions (all must pass) and the 164 HumanEvalPack Python
buggy solutions (buggy versions of the same tasks: good negatives), as evalplus `solution` lines
(whole programs). Both judges get the same samples file:
- evalplus: `evalplus.evaluate.evaluate("humaneval", samples=..., parallel=None)` (its default
  parallelism: cpu_count // 2 workers), in a subprocess whose environment points it at the local data
  (HUMANEVAL_OVERRIDE_PATH) and at its own cache dir (XDG_CACHE_HOME), so nothing is downloaded;
- this sandbox: `Sandbox(SandboxConfig(workers=N))` (`--workers`, default 2: this machine's cores),
  full isolation, `check_many` over the same lines.
Each judge is timed "cold" (computing its ground truth: the canonical solutions' outputs on every
input, which both cache) and "warm" (cache filled), and the verdicts (base and base+plus) compared
sample by sample. Rounds alternate the judges, so background load hits both alike.

    python benchmarks/evalplus_speed.py --rounds 1 --out benchmarks/results/evalplus_speed.json
"""
from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "evalplus" / "HumanEvalPlus.jsonl.gz"
EVALPLUS = """
import json, sys, time
from evalplus.evaluate import evaluate
start = time.perf_counter()
evaluate("humaneval", samples=sys.argv[1], i_just_wanna_run=True)
elapsed = time.perf_counter() - start
print("RRTF_ELAPSED", elapsed)
"""


def samples() -> list[dict]:
    from rrtf.datasets.humanevalpack import load_humanevalpack

    plus = [json.loads(line) for line in gzip.open(DATA, "rt")]
    buggy = {p.task_id.replace("Python/", "HumanEval/"): p for p in load_humanevalpack("python")}
    out = [{"task_id": r["task_id"], "solution": r["prompt"] + r["canonical_solution"], "kind": "canonical"} for r in plus]
    out += [{"task_id": r["task_id"], "solution": buggy[r["task_id"]].prompt + buggy[r["task_id"]].buggy_solution, "kind": "buggy"}
            for r in plus if r["task_id"] in buggy]
    return out


def run_evalplus(path: Path, cache: Path) -> tuple[float, dict]:
    """evalplus's evaluate in a subprocess; (seconds inside evaluate(), {(task, n): (base, plus)})."""
    Path(str(path).replace(".jsonl", "_eval_results.json")).unlink(missing_ok=True)  # else evalplus asks to overwrite
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "HumanEvalPlus.jsonl"
        plain.write_bytes(gzip.decompress(DATA.read_bytes()))
        env = {**os.environ, "HUMANEVAL_OVERRIDE_PATH": str(plain), "XDG_CACHE_HOME": str(cache)}
        proc = subprocess.run([sys.executable, "-c", EVALPLUS, str(path)], env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"evalplus failed:\n{proc.stderr[-3000:]}")
    elapsed = float(next(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("RRTF_ELAPSED")))
    results = json.loads(Path(str(path).replace(".jsonl", "_eval_results.json")).read_text())
    verdicts = {}
    for task_id, rows in results["eval"].items():
        for n, row in enumerate(rows):
            base = row["base_status"] == "pass"
            verdicts[(task_id, n)] = (base, base and row["plus_status"] == "pass")
    return elapsed, verdicts


def run_sandbox(lines: list[dict], workers: int, cache: Path) -> tuple[float, dict]:
    os.environ["RRTF_CACHE"] = str(cache)  # read when judged: a fresh dir is a cold ground-truth cache
    from sandbox import Problem, Sandbox, SandboxConfig
    from sandbox.base.store import iter_jsonl
    from sandbox.evalplus import base_passed

    problems = {rec["task_id"]: Problem.from_record(rec, where=where) for where, rec in iter_jsonl(DATA)}
    counter: dict[str, int] = {}
    jobs, keys = [], []
    for i, line in enumerate(lines):
        n = counter[line["task_id"]] = counter.get(line["task_id"], -1) + 1
        jobs.append((dataclasses.replace(problems[line["task_id"]], code_prefix=""), line["solution"], i))
        keys.append((line["task_id"], n))
    with Sandbox(SandboxConfig(workers=workers)) as sb:
        start = time.perf_counter()
        verdicts = list(sb.check_many(jobs))
        elapsed = time.perf_counter() - start
    return elapsed, {keys[v.sample_index]: (base_passed(v), v.passed) for v in verdicts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="warm rounds per judge (alternating) after the cold one")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "evalplus_speed.json"))
    args = ap.parse_args()
    lines = samples()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "samples.jsonl"
        path.write_text("".join(json.dumps({"task_id": x["task_id"], "solution": x["solution"]}) + "\n" for x in lines))
        ep_cache, sb_cache = Path(tmp) / "evalplus-cache", Path(tmp) / "rrtf-cache"
        times: dict[str, list[float]] = {"evalplus cold": [], "sandbox cold": [], "evalplus warm": [], "sandbox warm": []}
        for r in range(args.rounds + 1):
            label = "cold" if r == 0 else "warm"
            t, ep = run_evalplus(path, ep_cache)
            times[f"evalplus {label}"].append(t)
            print(f"round {r}: evalplus {label} {t:.1f} s", flush=True)
            t, sb = run_sandbox(lines, args.workers, sb_cache)
            times[f"sandbox {label}"].append(t)
            print(f"round {r}: sandbox {label} {t:.1f} s", flush=True)
    load_after = os.getloadavg()
    keys = sorted(ep)
    disagree = [(k, ep[k], sb.get(k)) for k in keys if ep[k] != sb.get(k)]
    kinds = {}
    counter: dict[str, int] = {}
    for x in lines:
        n = counter[x["task_id"]] = counter.get(x["task_id"], -1) + 1
        kinds[(x["task_id"], n)] = x["kind"]
    summary = {kind: {"samples": sum(1 for k in keys if kinds[k] == kind),
                      "evalplus_plus_pass": sum(ep[k][1] for k in keys if kinds[k] == kind),
                      "sandbox_plus_pass": sum(bool(sb.get(k, (0, 0))[1]) for k in keys if kinds[k] == kind)}
               for kind in ("canonical", "buggy")}
    best = {name: min(v) for name, v in times.items() if v}
    ratio_cold = best["evalplus cold"] / best["sandbox cold"]
    ratio_warm = best["evalplus warm"] / best["sandbox warm"] if "sandbox warm" in best else None
    print(f"\n{'judge':<16}{'seconds':>10}")
    for name, t in best.items():
        print(f"{name:<16}{t:>10.1f}")
    print(f"\nsamples {len(keys)}, verdicts agreeing {len(keys) - len(disagree)}/{len(keys)}: {summary}")
    print(f"evalplus / sandbox time: cold {ratio_cold:.2f}x" + (f", warm {ratio_warm:.2f}x" if ratio_warm else ""))
    for k, e, s in disagree[:20]:
        print(f"  disagree {k}: evalplus (base, plus) {e}, sandbox {s}")
    out = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores", "python": sys.version.split()[0],
           "load_before": load_before, "load_after": load_after, "sandbox_workers": args.workers,
           "evalplus_workers": max(1, (os.cpu_count() or 2) // 2), "seconds": times, "best": best,
           "ratio_evalplus_over_sandbox": {"cold": ratio_cold, "warm": ratio_warm}, "samples": len(keys),
           "agreeing": len(keys) - len(disagree), "disagreements": [[list(k), e, s] for k, e, s in disagree], "summary": summary}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
