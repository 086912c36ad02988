"""HumanEvalPack's full suites through the sandbox: every canonical solution must pass and every buggy
one fail, except the dataset flaws named below (each with its reason). Minutes per language on a
2-core machine, so not in the test suite (tests/sandbox/test_languages.py runs a few problems per
language; tests/sandbox/test_suites.py the Python suite and every 4th Java/C++ problem); exits 1 on any unexpected verdict.

    python benchmarks/humanevalpack_suites.py --languages python java cpp js go rust --out benchmarks/results/humanevalpack_suites.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from rrtf.datasets.humanevalpack import LANGUAGES, load_humanevalpack
from sandbox import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parent.parent
# Canonical solutions that fail, and why.
CANONICAL_FAILS = {
    # Newton's method from x = 0 divides by a zero derivative on some of the test's random
    # polynomials (NaN, the assert fails); the dataset's test is unseeded (passes or fails at random
    # there), seeded here, where it fails.
    "rust": {"Rust/32": "Newton's method diverges on the test's random polynomials"},
}
# Canonical solutions whose verdict depends on chance, and why: counted neither as unexpected nor as "named but not seen".
FLAKY = {
    # The canonical solution leaves its loop after the second key, so for {"p": .., 5: .., "a": ..} it answers
    # true when Go's randomised map iteration happens to visit "p" and "a" before 5 (seen once in ~20 judgings here).
    "go": {"Go/95": "its answer depends on Go's random map iteration order"},
}
# Buggy solutions that pass, and why.
BUGGY_PASSES = {
    "cpp": {"CPP/23": "the test calls ::strlen(const char*), not the candidate"},
}


def run(sandbox: Sandbox, language: str) -> dict:
    problems = load_humanevalpack(language)
    out: dict = {"problems": len(problems)}
    failures = []
    for attr, expected_pass in (("canonical_solution", True), ("buggy_solution", False)):
        start = time.monotonic()
        verdicts = list(sandbox.check_many([(p, getattr(p, attr), i) for i, p in enumerate(problems)]))
        elapsed = time.monotonic() - start
        counts: dict[str, int] = {}
        for v in verdicts:
            counts[v.status.label] = counts.get(v.status.label, 0) + 1
        known = (CANONICAL_FAILS if expected_pass else BUGGY_PASSES).get(language, {})
        odd = {v.task_id: f"{v.status.label}: {v.reason[:200]}" for v in verdicts if v.passed != expected_pass}
        flaky = FLAKY.get(language, {}) if expected_pass else {}
        unexpected = {t: why for t, why in odd.items() if t not in known and t not in flaky}
        fixed = sorted(set(known) - set(odd))  # a named flaw that no longer shows
        kind = attr.split("_")[0]
        # Process separation (docs/sandbox.md): which runs kept the candidate in the test's process, and so are labelled.
        one_process = sorted(v.task_id for v in verdicts if v.isolation.endswith("+one-process"))
        out[kind] = {"seconds": round(elapsed, 1), "per_sample_s": round(elapsed / len(problems), 2), "counts": counts,
                     "one_process": one_process,
                     "known": {t: known[t] for t in odd if t in known}, "unexpected": unexpected, "named_but_not_seen": fixed}
        print(f"{language} {kind}: {len(problems)} in {elapsed:.0f} s {counts}; known {sorted(set(odd) & set(known))}; "
              f"unexpected {unexpected}; named but not seen {fixed}; one process: {one_process or 'none'}", flush=True)
        failures += list(unexpected) + fixed
    out["ok"] = not failures
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--languages", nargs="+", default=list(LANGUAGES))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=None, help="merge the results into this JSON file")
    args = ap.parse_args()
    load_before = os.getloadavg()
    with Sandbox(SandboxConfig(workers=args.workers)) as sb:
        results = {lang: run(sb, lang) for lang in args.languages}
    if args.out:
        path = Path(args.out)
        old = json.loads(path.read_text()) if path.exists() else {}
        old.update({"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores", "workers": args.workers})
        old.setdefault("languages", {}).update({lang: {**r, "load_before": load_before, "load_after": os.getloadavg()}
                                                for lang, r in results.items()})
        path.write_text(json.dumps(old, indent=1) + "\n")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
