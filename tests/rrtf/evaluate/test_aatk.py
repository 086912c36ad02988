"""Asleep at the Keyboard (diversity of weakness) judged here: every scenario's substitute checker on
its known-secure and known-insecure completion (real model completions from the dataset's own
completion files, or written here where none was found: data/aatk/validation_dow.jsonl says which),
validity by gcc / compile(), the scores, and the whole evaluation through the CLI, resumed.

The judges need gcc (the C scenarios' validity) and Bandit (the Python scenarios' checker): when
either is missing these tests fail naming what to install, they do not skip."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections import Counter

import pytest

from rrtf.datasets import load_dataset
from rrtf.datasets.aatk import cwe_of, validation_pairs
from rrtf.evaluate import EvalConfig, build_eval_backend, evaluate
from rrtf.evaluate.aatk import judge
from rrtf.evaluate.static_scores import security
from rrtf.prompts import get_strategy
from sandbox.base.records import Status

PROBLEMS = {p.task_id: p for p in load_dataset("aatk").problems}


def test_judging_tools_are_installed():
    # Not a skip: a machine without them cannot judge AATK, and CI must say so.
    assert shutil.which("gcc"), "gcc missing: install the Debian package gcc (scripts/setup.sh installs it)"
    try:
        import bandit  # noqa: F401
    except ImportError:
        pytest.fail("bandit missing: pip install -e '.[security]' (the Python scenarios' checker)")


def test_the_dataset_is_the_40_automatically_checked_scenarios():
    problems = list(PROBLEMS.values())
    assert len(problems) == 40
    assert Counter(p.language for p in problems) == {"c": 23, "python": 17}
    assert len({cwe_of(p.task_id) for p in problems}) == 14  # the 18 CWEs of all 54 DoW scenarios less 4 checked by hand only
    assert set(validation_pairs()) == set(PROBLEMS)


@pytest.mark.parametrize("scenario", sorted(PROBLEMS))
def test_checker_passes_the_secure_and_flags_the_insecure_completion(scenario):
    problem, pair = PROBLEMS[scenario], validation_pairs()[scenario]
    secure, insecure = judge(problem, pair["secure"], 0), judge(problem, pair["insecure"], 1)
    assert secure.status == Status.PASSED, (scenario, secure.reason)
    assert insecure.status == Status.PARTIAL and insecure.reason.startswith("insecure: "), (scenario, insecure.status, insecure.reason)


def test_an_unparsable_or_uncompilable_completion_is_invalid():
    c = PROBLEMS["DoW/CWE-476-0"]
    py = PROBLEMS["DoW/CWE-89-0"]
    bad_c = judge(c, "    int x = ;\n", 0)
    bad_py = judge(py, "    return (\n", 0)
    assert bad_c.status == Status.COMPILE_ERROR and "error" in bad_c.reason
    assert bad_py.status == Status.COMPILE_ERROR and "Error" in bad_py.reason  # SyntaxError or its IndentationError


def test_completions_are_cut_where_the_dataset_script_stops():
    strategy = get_strategy("aatk-complete")
    py, c = PROBLEMS["DoW/CWE-89-0"], PROBLEMS["DoW/CWE-476-0"]
    assert strategy.prompt(py) == py.code_prefix  # a plain continuation: no template
    assert strategy.completion(py, "    return 1\n\ndef other():\n    pass") == "    return 1\n"
    assert strategy.completion(c, "    free(p);\n}\nint main2() {}") == "    free(p);"


def test_security_rates_count_valid_and_insecure():
    statuses = ["passed", "passed", "partial", "compile_error", "not_judged"]
    s = security(statuses)
    assert (s["samples"], s["valid"], s["insecure"], s["not_judged"]) == (4, 3, 1, 1)
    assert s["valid_rate"] == 0.75 and s["insecure_rate"] == pytest.approx(1 / 3) and s["insecure_of_all"] == 0.25


def test_evaluation_reports_secure_and_insecure_answers_both_ways(tmp_path, sandbox):
    # The reference backend answers each problem's canonical completion: the secure one, then (problems
    # rebuilt with the insecure completion as canonical) the insecure one -- end to end through evaluate().
    secure = list(PROBLEMS.values())
    insecure = [dataclasses.replace(p, canonical_solution=validation_pairs()[p.task_id]["insecure"]) for p in secure]
    for problems, rate in ((secure, 0.0), (insecure, 1.0)):
        cfg = EvalConfig(backend="reference", num_samples=0, output_file=str(tmp_path / f"r{rate}.json"))
        result = evaluate({"aatk": problems}, build_eval_backend(cfg, {"aatk": problems}), sandbox, cfg)
        m = result.datasets["aatk"].metrics["security"]["greedy"]
        assert m["valid_rate"] == 1.0 and m["insecure_rate"] == rate, m
        assert m["by_language"]["c"]["samples"] == 23 and len(m["by_cwe"]) == 14


def test_cli_runs_with_the_reference_backend_and_resumes(tmp_path):
    out = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "rrtf.evaluate", "--backend", "reference", "--num_samples", "0", "--datasets", "aatk",
           "--output_file", str(out)]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    samples = out.with_name("results.samples.jsonl").read_text().splitlines()
    assert len(samples) == 40
    result = json.loads(out.read_text())["datasets"]["aatk"]
    assert result["metrics"]["security"]["greedy"]["valid_rate"] == 1.0
    assert "## Code security" in out.with_name("results.md").read_text()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert out.with_name("results.samples.jsonl").read_text().splitlines() == samples  # nothing judged twice
