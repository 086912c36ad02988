"""JavaScript, Go and Rust through the public Sandbox API, with the real toolchains: a canonical
HumanEvalPack solution passes, a buggy one fails, a program that does not build is a compile error,
and a missing toolchain is one verdict naming the Debian package to install (the run goes on).
The full 164-problem suites are in benchmarks/humanevalpack_suites.py (minutes per language)."""
from __future__ import annotations

import os
import re

import pytest

from rrtf.datasets.humanevalpack import load_humanevalpack
from sandbox import Problem, Status
from sandbox.languages import go, js, rust

TOOLCHAINS = {"js": js.NODE, "go": go.GO, "rust": rust.RUSTC}
# (problem index, a completion that does not build)
CASES = {"js": (2, "  return number % 1.0 +;\n}\n"), "go": (2, "    return number - undefinedName\n}\n"),
         "rust": (2, "    return number % 1.0 +\n}\n")}


def _needs(lang: str):
    return pytest.mark.skipif(not os.path.exists(TOOLCHAINS[lang]), reason=f"{TOOLCHAINS[lang]} not installed")


@pytest.mark.parametrize("lang", [pytest.param(lang, marks=_needs(lang)) for lang in CASES])
def test_canonical_passes_buggy_fails_broken_does_not_build(sandbox, lang):
    index, broken = CASES[lang]
    problem = load_humanevalpack(lang)[index]
    samples = [(problem, problem.canonical_solution, 0), (problem, problem.buggy_solution, 1), (problem, broken, 2)]
    canonical, buggy, compile_error = sorted(sandbox.check_many(samples), key=lambda v: v.sample_index)
    assert canonical.status == Status.PASSED and canonical.total_tests > 1, canonical
    assert buggy.status == Status.PARTIAL and buggy.passed_tests < buggy.total_tests, buggy
    assert compile_error.status == Status.COMPILE_ERROR and "compile error" in compile_error.reason, compile_error


@pytest.mark.parametrize("lang,patch,package", [
    ("js", ("NODE", "/nonexistent/node"), "nodejs"),
    ("go", ("PACKAGES", {"/nonexistent/go": "golang-go"}), "golang-go"),
    ("rust", ("RUSTC", "/nonexistent/rustc"), "rustc"),
    ("rust", ("REGISTRY", "/nonexistent/registry"), "librust-rand-dev, librust-regex-dev"),
])
def test_missing_toolchain_is_one_clear_verdict_and_the_run_goes_on(sandbox, monkeypatch, lang, patch, package):
    module = {"js": js, "go": go, "rust": rust}[lang]
    monkeypatch.setattr(module, *patch)
    problem = load_humanevalpack(lang)[0]
    python = Problem(task_id="py/0", prompt="def f():\n", code_prefix="def f():\n", entry_point="f",
                     test="def check(f):\n    assert f() == 1\n")
    verdicts = {v.task_id: v for v in sandbox.check_many([(problem, problem.canonical_solution, 0), (python, "    return 1\n", 0)])}
    missing = verdicts[problem.task_id]
    assert missing.status == Status.NOT_JUDGED and "toolchain missing" in missing.reason and package in missing.reason, missing
    assert len(missing.reason) < 200 and missing.duration_s < 1
    assert verdicts["py/0"].passed


@_needs("rust")
def test_rust_candidate_cannot_override_symbols_or_shadow_the_test(sandbox):
    """A `#[no_mangle] bcmp` would make every slice compare equal; a macro named assert_eq or a type
    named like a prelude one must not reach the test's crate."""
    problem = load_humanevalpack("rust")[29]  # filter_by_prefix: compares Vec<String>s
    forged = [
        "    vec![]\n}\n#[no_mangle]\npub extern \"C\" fn bcmp(_a: *const u8, _b: *const u8, _n: usize) -> i32 { 0 }\n",
        "    vec![]\n}\n#[macro_export]\nmacro_rules! assert_eq { ($($t:tt)*) => {} }\npub fn assert_eq() {}\n",
        "    vec![]\n}\npub struct Vec;\npub fn vec() {}\n",
    ]
    verdicts = list(sandbox.check_many([(problem, c, i) for i, c in enumerate(forged)]))
    assert len(verdicts) == 3 and not any(v.passed for v in verdicts), [(v.status, v.reason) for v in verdicts]


@_needs("rust")
def test_rust_symbol_check_catches_what_the_source_check_would_miss(sandbox, monkeypatch):
    """The second line of the one-process build (Rust/22: `dyn Any` is outside the wire's codec): with the source
    check off, the rlib's symbol table still refuses `bcmp`. In a separated run (Rust/29) the same symbol is the
    candidate's own program's business: it reaches no test, and the wrong answer is judged wrong."""
    monkeypatch.setattr(rust, "REFUSED", re.compile(r"(?!)"))
    problems = load_humanevalpack("rust")
    forged = "    vec![]\n}\n#[no_mangle]\npub extern \"C\" fn bcmp(_a: *const u8, _b: *const u8, _n: usize) -> i32 { 0 }\n"
    fallback, separated = sandbox.check_many([(problems[22], forged, 0), (problems[29], forged, 1)])
    if fallback.sample_index:
        fallback, separated = separated, fallback
    assert fallback.isolation.endswith("+one-process"), fallback
    assert fallback.status == Status.COMPILE_ERROR and "bcmp" in fallback.reason, fallback
    assert not separated.passed and not separated.isolation.endswith("+one-process"), separated
