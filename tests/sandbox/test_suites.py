"""The sandbox against the real benchmark suites, through the public `Sandbox` API.

Reference solutions must pass and HumanEvalPack's buggy solutions must fail, except for a documented
list of known exceptions, each with its reason (asserted exactly, not as a threshold).
Run with `-s` to see the counts and timings.
"""
from __future__ import annotations

import shutil
import time

import pytest

from rrtf.datasets.humaneval import load_humaneval
from rrtf.datasets.humanevalpack import load_humanevalpack
from rrtf.datasets.mbpp import load_mbpp
from sandbox import Sandbox, SandboxConfig, Status

# MBPP test split (500): canonical solutions that fail, and why (task id -> expected reason).
# None besides MBPP_SLOW. (MBPP/367 is the one whose asserts need test_setup_code, run after the
# program because it builds the program's Node objects: it must pass.)
MBPP_KNOWN_FAILURES: dict[str, str] = {}
# Too slow for the default 3 s per-test timeout on this class of machine: the reference
# amicable_numbers_sum(9999) is O(n^2) (5-10 s here); the other two asserts pass. Accepted as passed
# (on a machine fast enough) or as exactly that one case timing out.
MBPP_SLOW = {"MBPP/123": 1}

# HumanEvalPack buggy solutions that still pass the tests, and why.
BUGGY_STILL_PASSING = {
    "python": {},
    "java": {},
    # `strlen("x")` in the test passes a const char*: overload resolution prefers the C library's
    # ::strlen(const char*) (exact match, from <cstring>) to the candidate's strlen(string), so the
    # test never calls the candidate. The canonical solution "passes" the same way.
    "cpp": {"CPP/23": "the test calls ::strlen(const char*), not the candidate"},
}


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(workers=2)) as sb:
        yield sb


def judge_all(sandbox: Sandbox, problems, attr: str) -> dict[str, object]:
    start = time.monotonic()
    verdicts = {v.task_id: v for v in sandbox.check_many([(p, getattr(p, attr), i) for i, p in enumerate(problems)])}
    elapsed = time.monotonic() - start
    assert len(verdicts) == len(problems)
    counts = {}
    for v in verdicts.values():
        counts[v.status.label] = counts.get(v.status.label, 0) + 1
    print(f"\n{problems[0].source} {attr}: {len(problems)} in {elapsed:.1f} s ({len(problems) / elapsed:.1f}/s): {counts}")
    return verdicts


def failing(verdicts) -> dict[str, str]:
    return {tid: f"{v.status.label}: {v.reason}" for tid, v in verdicts.items() if not v.passed}


def test_humaneval_canonical_all_pass(sandbox):
    problems = load_humaneval()
    assert len(problems) == 164
    verdicts = judge_all(sandbox, problems, "canonical_solution")
    assert failing(verdicts) == {}
    # Per-case counting is real: every problem has at least one counted test case.
    assert all(v.total_tests >= 1 and v.passed_tests == v.total_tests for v in verdicts.values())


def test_mbpp_canonical_pass_except_known(sandbox):
    problems = load_mbpp("test")
    assert len(problems) == 500
    verdicts = judge_all(sandbox, problems, "canonical_solution")
    fails = failing(verdicts)
    for tid, reason in MBPP_KNOWN_FAILURES.items():
        assert tid in fails and reason in fails[tid], (tid, fails.get(tid))
    for tid, case in MBPP_SLOW.items():
        v = verdicts[tid]
        if not v.passed:
            assert v.reason == "timeout" and [i for i, t in enumerate(v.tests) if not t.passed] == [case], v
    unexpected = {tid: why for tid, why in fails.items() if tid not in MBPP_KNOWN_FAILURES and tid not in MBPP_SLOW}
    assert unexpected == {}
    print(f"MBPP failures: {fails}")


@pytest.mark.slow
def test_mbpp_other_splits_canonical_pass(sandbox):
    """The other 474 MBPP tasks (prompt, validation, train): all pass. MBPP/533, whose test passes type
    objects as arguments (`remove_datatype((4, 5, 4, 7.7, 1.2), int)`), failed before type objects
    became plain data."""
    problems = [p for split in ("prompt", "validation", "train") for p in load_mbpp(split)]
    assert len(problems) == 474 and any(p.task_id == "MBPP/533" for p in problems)
    assert failing(judge_all(sandbox, problems, "canonical_solution")) == {}


def check_pack(sandbox, language: str, stride: int = 1) -> None:
    """Canonical solutions pass, buggy ones fail (but the named flaws) on every `stride`-th problem and
    every named flaw. The full compiled suites take minutes on 2 cores: they run in
    benchmarks/humanevalpack_suites.py (all six languages, the same flaw lists, exit 1 on a surprise)."""
    problems = load_humanevalpack(language)
    assert len(problems) == 164
    problems = [p for i, p in enumerate(problems) if i % stride == 0 or p.task_id in BUGGY_STILL_PASSING[language]]
    canonical = judge_all(sandbox, problems, "canonical_solution")
    assert failing(canonical) == {}
    buggy = judge_all(sandbox, problems, "buggy_solution")
    still_passing = {tid for tid, v in buggy.items() if v.passed}
    print(f"{language}: buggy solutions still passing: {len(still_passing)} {sorted(still_passing)}")
    assert still_passing == set(BUGGY_STILL_PASSING[language])
    # A buggy solution never scores above its canonical one.
    assert all(buggy[t].score <= canonical[t].score for t in canonical)


def test_humanevalpack_python_canonical_pass(sandbox):
    problems = load_humanevalpack("python")
    assert failing(judge_all(sandbox, problems, "canonical_solution")) == {}


@pytest.mark.slow
def test_humanevalpack_python_buggy_fail(sandbox):
    check_pack(sandbox, "python")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("javac") is None, reason="JDK not installed")
def test_humanevalpack_java(sandbox):
    check_pack(sandbox, "java", stride=4)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_humanevalpack_cpp(sandbox):
    check_pack(sandbox, "cpp", stride=4)


def test_compiled_suites_count_cases(sandbox):
    """Java and C++ tests are split per case, like Python's: same case counts on a sample."""
    samples = [0, 12, 53, 100, 151]
    for language in ("java", "cpp"):
        problems = [load_humanevalpack(language)[i] for i in samples]
        verdicts = judge_all(sandbox, problems, "canonical_solution")
        assert failing(verdicts) == {}
        assert all(v.total_tests > 1 for v in verdicts.values()), {t: v.total_tests for t, v in verdicts.items()}
        assert verdicts[problems[0].task_id].status == Status.PASSED
