"""What process separation costs per HumanEvalPack suite: the same suites judged by an earlier revision of the
sandbox (one process: candidate and test together) and by this tree (two programs, calls as plain data), per
language, alternating in one run so that both see the same machine and load.

    python benchmarks/separation_cost.py [--before a689f5e] [--languages java cpp js go rust] [--out benchmarks/results/separation_cost.json]

The earlier revision is checked out into a temporary git worktree and run with this interpreter, its own
tree first on the import path. Each side runs benchmarks/humanevalpack_suites.py of its own tree (so each
judges by its own rules) and the ratio after/before of the seconds per suite is reported. The issue's bound
(issue 17): at most 1.5x.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOUND = 1.5


def suite(tree: Path, language: str, workers: int) -> dict:
    """One language's canonical and buggy suites, judged by the sandbox of `tree`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "suite.json"
        env = {**os.environ, "PYTHONPATH": str(tree)}
        cmd = [sys.executable, str(tree / "benchmarks" / "humanevalpack_suites.py"), "--languages", language,
               "--workers", str(workers), "--out", str(out)]
        subprocess.run(cmd, cwd=tree, env=env, check=False)
        result = json.loads(out.read_text())["languages"][language]
    keep = ("seconds", "counts", "one_process")  # one_process: the runs that kept the candidate in the test's process
    return {kind: {k: result[kind][k] for k in keep if k in result[kind]} for kind in ("canonical", "buggy")} | {"ok": result["ok"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", default="a689f5e", help="the revision before separation")
    ap.add_argument("--languages", nargs="+", default=["java", "cpp", "js", "go", "rust"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "separation_cost.json"))
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(old), args.before], cwd=ROOT, check=True)
        try:
            for lang in args.languages:
                before, after = suite(old, lang, args.workers), suite(ROOT, lang, args.workers)
                rows[lang] = {"before": before, "after": after, "ratio": {
                    kind: round(after[kind]["seconds"] / max(before[kind]["seconds"], 1e-9), 2) for kind in ("canonical", "buggy")}}
                print(f"{lang}: canonical {before['canonical']['seconds']} -> {after['canonical']['seconds']} s "
                      f"({rows[lang]['ratio']['canonical']}x), buggy {before['buggy']['seconds']} -> {after['buggy']['seconds']} s "
                      f"({rows[lang]['ratio']['buggy']}x)", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, check=False)
    print(f"\n{'language':<9}{'canonical before':>17}{'after':>8}{'ratio':>7}{'buggy before':>14}{'after':>8}{'ratio':>7}  ok")
    for lang, r in rows.items():
        b, a, q = r["before"], r["after"], r["ratio"]
        print(f"{lang:<9}{b['canonical']['seconds']:>17}{a['canonical']['seconds']:>8}{q['canonical']:>7}"
              f"{b['buggy']['seconds']:>14}{a['buggy']['seconds']:>8}{q['buggy']:>7}  {b['ok'] and a['ok']}")
    worst = max((q for r in rows.values() for q in r["ratio"].values()), default=0.0)
    Path(args.out).write_text(json.dumps({
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, no GPU", "before": args.before,
        "workers": args.workers, "bound": BOUND, "worst_ratio": worst, "languages": rows}, indent=1) + "\n")
    print(f"worst ratio {worst}x (bound {BOUND}x); wrote {args.out}")
    return 0 if all(r["after"]["ok"] for r in rows.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
