"""The evaluation breadth through the real sandbox: every dataset kind and task (EvalPlus, HumanEvalPack
synthesize/fix/fix-tests/explain in several languages, ReCode, LeetCode) judged with the real reference
backend (canonical answers pass, buggy ones fail, descriptions cannot leak code), a tiny real model
end to end, and what happens when a toolchain or a language is missing."""
from __future__ import annotations

import json

import pytest

import rrtf.datasets.humanevalpack as hep
from rrtf.backends import build_backend
from rrtf.backends.reference import ReferenceBackend
from rrtf.datasets import load_dataset, spec_of
from rrtf.evaluate import EvalConfig, build_eval_backend, evaluate
from rrtf.evaluate.cli import exit_status, run
from rrtf.prompts import get_strategy
from sandbox.base.records import Verdict
from sandbox.evalplus import base_passed

# One small slice of every dataset kind x task; compiled languages once each.
SLICES = {
    "humaneval+": 2, "mbpp+": 2, "leetcode": 3, "recode-func_name": 1, "recode-natgen": 1,
    "humanevalpack-python:fix": 2, "humanevalpack-python:fix-tests": 2, "humanevalpack-python:explain": 2,
    "humanevalpack-go:fix-tests": 1, "humanevalpack-js:explain": 1, "humanevalpack-java:fix": 1, "humanevalpack-cpp:synthesize": 1,
    "humanevalpack-rust:fix-tests": 1,
}


def _problems(names: dict[str, int]) -> dict[str, list]:
    from rrtf.datasets import limit_problems

    out = {}
    for name, n in names.items():
        ds = load_dataset(name)
        out[name] = limit_problems(ds.problems, n, ds.spec)
    return out


def test_reference_answers_pass_every_task_and_metrics_are_reported(sandbox, tmp_path):
    problems = _problems(SLICES)
    cfg = EvalConfig(backend="reference", num_samples=0, output_file=str(tmp_path / "results.json"))
    result = evaluate(problems, build_eval_backend(cfg, problems), sandbox, cfg)
    for name, d in result.datasets.items():
        assert d.error is None, (name, d.error)
        if name != "recode-natgen":
            assert d.greedy_pass_at_1 == 1.0, (name, d.failure_reasons)
    # ReCode's natgen copies are partial code with syntax changed; a few canonical continuations no longer
    # fit (a dataset flaw, docs/evaluation.md): the nominal partial code passes, the flawed copy does not.
    natgen = result.datasets["recode-natgen"].metrics["robustness"]["greedy"]
    assert natgen["family"]["nominal pass@1"] == 1.0 and natgen["family"]["RP@1"] == 0.0
    assert result.datasets["recode-natgen"].failure_reasons == {"SyntaxError": 1}
    assert result.datasets["humanevalpack-python:explain"].strategy == "explain"
    # EvalPlus: base and plus reported apart; LeetCode: by difficulty; ReCode: per type and family.
    assert result.datasets["mbpp+"].metrics["base"] == {"greedy@1": 1.0} == result.datasets["mbpp+"].metrics["plus"]
    by_difficulty = result.datasets["leetcode"].metrics["by_category"]
    assert sum(c["problems"] for c in by_difficulty.values()) == 3 and set(by_difficulty) <= {"Easy", "Medium", "Hard"}
    robust = result.datasets["recode-func_name"].metrics["robustness"]["greedy"]
    assert robust["problems"] == 1 and robust["family"]["RP@1"] == 1.0 and robust["family"]["RR@1"] == 0.0
    assert set(robust["types"]) == {"FuncRenameButterFinger", "FuncRenameCamelCase", "FuncRenameChangeChar",
                                    "FuncRenameInflectionalVariation", "FuncRenameSwapChar", "FuncRenameSynonymSub"}
    assert robust["types"]["FuncRenameSwapChar"]["seeds"] == 5 and robust["types"]["FuncRenameCamelCase"]["seeds"] == 1
    # The explain records keep the description the code was written from, and the prompt it was asked in.
    samples = [json.loads(line) for line in (tmp_path / "results.samples.jsonl").read_text().splitlines()]
    explained = [s for s in samples if s["dataset"] == "humanevalpack-python:explain"]
    assert explained and all(s["first_response"].startswith("The function ") and s["first_response"] in s["prompt"] for s in explained)
    # EvalPlus verdicts keep every input's outcome: base_passed is computed from them.
    lines = [json.loads(line) for line in (tmp_path / "results.verdicts.jsonl").read_text().splitlines()]
    evalplus = [Verdict.from_record({k: v for k, v in r.items() if k not in ("round", "code_hash", "dataset")})
                for r in lines if r["dataset"] in ("humaneval+", "mbpp+")]
    assert len(evalplus) == 4 and all(base_passed(v) for v in evalplus)


@pytest.mark.parametrize("name", ["humanevalpack-python:fix-tests", "humanevalpack-go:fix"])
def test_buggy_answers_to_fix_prompts_fail(sandbox, name):
    problems = _problems({name: 2})[name]
    strategy = get_strategy(load_dataset(name).strategy)
    answers = {strategy.prompt(p): p.buggy_solution for p in problems}  # a "fix" that changes nothing
    cfg = EvalConfig(num_samples=0, output_file=None)
    result = evaluate({name: problems}, ReferenceBackend(answers), sandbox, cfg)
    assert result.datasets[name].greedy_pass_at_1 == 0.0


def test_explain_descriptions_cannot_leak_code(sandbox):
    """The model copies the solution into its description: the copied lines are removed before the
    synthesis prompt is built (the reference backend only knows the prompt with them removed)."""
    problem = _problems({"humanevalpack-python:explain": 1})["humanevalpack-python:explain"][0]
    strategy = get_strategy("explain")
    leaked = "It computes:\n" + problem.canonical_solution
    described = strategy.description(problem, leaked)
    long_lines = [line.strip() for line in problem.canonical_solution.splitlines() if len(line.strip()) > 20]
    assert long_lines and not any(line in described for line in long_lines)
    assert len(described) <= len(hep._records("python")[0][1]["docstring"])  # the docstring's length
    answers = {strategy.prompt(problem): leaked, strategy.synthesis_prompt(problem, described): problem.canonical_solution}
    result = evaluate({"x": [problem]}, ReferenceBackend(answers), sandbox, EvalConfig(num_samples=0, output_file=None,
                                                                                      strategy="explain"))
    assert result.datasets["x"].greedy_pass_at_1 == 1.0


def test_tiny_model_end_to_end_and_resume(sandbox, tiny_dir, tmp_path):
    # LeetCode's prompts (~1,000 tokens) do not fit this model's 512 positions: failed samples, the rest goes on.
    names = {"humaneval+": 2, "humanevalpack-python:explain": 1, "recode-natgen": 1, "mbpp+": 1, "leetcode": 1}
    problems = _problems(names)
    cfg = EvalConfig(model_name_or_path=str(tiny_dir), num_samples=2, k=[1, 2], temperature=0.8, max_new_tokens=12,
                     output_file=str(tmp_path / "results.json"))
    backend = build_backend("transformers", model_name_or_path=str(tiny_dir))
    first = evaluate(problems, backend, sandbox, cfg)
    robust = first.datasets["recode-natgen"].metrics["robustness"]
    assert set(robust) == {"greedy", "sampled"} and {"RP@1", "RP@2", "RD@2", "RR@2"} <= set(robust["sampled"]["family"])
    assert set(first.datasets["humaneval+"].metrics) == {"base", "plus"}
    assert first.datasets["leetcode"].failure_reasons == {"prompt too long": 3} and first.datasets["leetcode"].pass_at_k == {"pass@1": 0.0,
                                                                                                                           "pass@2": 0.0}
    lines = (tmp_path / "results.samples.jsonl").read_text().splitlines()
    expected = sum(len(v) for v in problems.values()) * 3  # greedy + 2 samples
    assert len(lines) == expected
    backend.calls = 0
    again = evaluate(problems, backend, sandbox, cfg)  # everything judged is reused: nothing generated
    assert len((tmp_path / "results.samples.jsonl").read_text().splitlines()) == expected
    assert {k: v.pass_at_k for k, v in again.datasets.items()} == {k: v.pass_at_k for k, v in first.datasets.items()}
    backend.close()


def test_missing_toolchain_names_the_package_and_the_rest_goes_on(sandbox, monkeypatch):
    import sandbox.languages.js as js

    monkeypatch.setattr(js, "NODE", "/nonexistent/node")  # as on a machine without Debian's nodejs
    problems = _problems({"humanevalpack-js:fix": 2, "humaneval+": 1})
    cfg = EvalConfig(backend="reference", num_samples=0, output_file=None)
    result = evaluate(problems, build_eval_backend(cfg, problems), sandbox, cfg)
    js_result = result.datasets["humanevalpack-js:fix"]
    assert js_result.error and "nodejs" in js_result.error and "toolchain missing" in js_result.error
    assert js_result.greedy_pass_at_1 is None and result.datasets["humaneval+"].greedy_pass_at_1 == 1.0
    assert exit_status(result) == 1
    assert "nodejs" in result.table()


def test_language_the_sandbox_lacks_is_reported_and_the_rest_is_written(tmp_path, monkeypatch):
    import sandbox.languages

    monkeypatch.setattr(sandbox.languages, "NAMES", tuple(n for n in sandbox.languages.NAMES if n != "go"))
    hep._records.cache_clear()
    try:
        out = tmp_path / "results.json"
        result = run(EvalConfig(backend="reference", num_samples=0, max_problems=1, sandbox_workers=1, output_file=str(out),
                                datasets=["humanevalpack-go:fix", "humaneval+"]))
    finally:
        hep._records.cache_clear()
    assert "no 'go' language" in result.datasets["humanevalpack-go:fix"].error
    saved = json.loads(out.read_text())
    assert saved["datasets"]["humaneval+"]["greedy_pass_at_1"] == 1.0 and saved["config"]["max_problems"] == 1
    summary = out.with_suffix(".md").read_text()
    assert "## Not evaluated" in summary and "humanevalpack-go:fix" in summary and "## EvalPlus" in summary


def test_every_dataset_and_task_is_listed_and_names_are_checked():
    from rrtf.datasets import task_table
    from rrtf.evaluate.cli import list_datasets

    table = {(d, t) for d, t, _, _ in task_table()}
    for lang in hep.LANGUAGES:
        assert {(f"humanevalpack-{lang}", t) for t in ("synthesize", "fix", "fix-tests", "explain")} <= table
    assert {("humaneval+", "synthesize"), ("mbpp+", "synthesize"), ("leetcode", "synthesize")} <= table
    assert {(f"recode-{f}", "synthesize") for f in ("docstring", "func_name", "format", "natgen")} <= table
    assert "humanevalpack-go:fix-tests" in list_datasets()
    with pytest.raises(ValueError, match="neither a split .* nor a task"):
        load_dataset("humanevalpack-go:explainn")
    with pytest.raises(ValueError, match="unknown dataset 'recode-docstrings'"):
        run(EvalConfig(backend="reference", datasets=["humaneval+", "recode-docstrings"], output_file=None))
    assert spec_of("recode-format").variant("HumanEval/3/tab_indent/s0") == ("tab_indent", 0)
    assert spec_of("recode-format").variant("HumanEval/3") is None


def test_generation_stops_at_the_models_context(tiny_dir):
    """A long prompt plus max_new_tokens past the 512 positions ends at the context; a prompt that fills
    it alone is an error naming the lengths (not an IndexError from the position table)."""
    from rrtf.backends import GenerationRequest, SamplingParams

    backend = build_backend("transformers", model_name_or_path=str(tiny_dir))
    try:
        long_prompt = "def f(x):\n" + "    x = x + 1\n" * 60  # ~ 430 tokens
        out = backend.generate([GenerationRequest(prompt=long_prompt, key="a")], SamplingParams(n=1, temperature=0.0, max_new_tokens=200))
        assert len(out[0]) == 1
        with pytest.raises(ValueError, match="does not fit the model's context of 512 tokens"):
            backend.generate([GenerationRequest(prompt=long_prompt * 3, key="b")], SamplingParams(n=1, temperature=0.0, max_new_tokens=8))
    finally:
        backend.close()


@pytest.mark.parametrize("line,field", [
    ({"task_id": "HumanEval/0", "index": 0, "source": "student", "prompt": "", "response": "", "code": 5}, "code"),
    ({"task_id": "HumanEval/0", "index": "first", "source": "student", "prompt": "", "response": "", "code": ""}, "index"),
])
def test_malformed_sample_records_name_file_line_and_field(tmp_path, line, field):
    from sandbox.base.errors import RecordError

    samples = tmp_path / "results.samples.jsonl"
    cfg = EvalConfig(backend="reference", num_samples=0, output_file=str(tmp_path / "results.json"))
    problems = {"humaneval+": _problems({"humaneval+": 1})["humaneval+"]}
    good = {"task_id": "HumanEval/1", "index": 0, "source": "student", "prompt": "", "response": "", "code": "", "dataset": "humaneval+",
            "stage": "greedy"}
    (tmp_path / "results.identity.json").write_text(json.dumps(cfg.fingerprint()))
    samples.write_text(json.dumps(good) + "\n" + json.dumps({**line, "dataset": "humaneval+", "stage": "greedy"}) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(RecordError, match=rf"{samples}:2.*{field}"):
        evaluate(problems, ReferenceBackend({}), None, cfg)


def test_cli_lists_names_by_task_and_refuses_unknown_ones():
    import subprocess
    import sys

    from testkit import REPO

    env_run = lambda *args: subprocess.run([sys.executable, "-m", "rrtf.evaluate", *args], cwd=REPO, capture_output=True, text=True,
                                           timeout=120)
    listed = env_run("--list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    for name in ("humanevalpack-rust:explain", "humanevalpack-go:fix-tests", "recode-natgen:synthesize", "leetcode:synthesize", "mbpp+:synthesize"):
        assert name in listed.stdout
    bad = env_run("--backend", "reference", "--datasets", "humaneval+", "humanevalpack-go:repair", "--output_file", "")
    assert bad.returncode == 2 and "'repair' is neither a split" in bad.stderr


def test_a_killed_evaluation_resumes_without_duplicates(tmp_path):
    """A real `python -m rrtf.evaluate` process SIGKILLed after its first judged batch (two-step explain
    and a ReCode family) resumes: nothing judged is redone, nothing is duplicated, the result is complete."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from testkit import REPO

    out = tmp_path / "results.json"
    samples = tmp_path / "results.samples.jsonl"
    args = [sys.executable, "-m", "rrtf.evaluate", "--backend", "reference", "--num_samples", "0", "--max_problems", "24",
            "--sandbox_workers", "1", "--datasets", "humanevalpack-python:explain", "recode-format", "--output_file", str(out)]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline and not (samples.exists() and samples.stat().st_size):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # right after its first judged batch was written
    proc.wait()
    first = []
    for line in samples.read_text().splitlines():  # a torn last line (killed mid-write) is dropped on resume
        try:
            first.append(json.loads(line))
        except json.JSONDecodeError:
            break
    assert 0 < len(first) < 24 + 24 * 11 and not out.exists()
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in samples.read_text().splitlines()]
    keys = [(r["dataset"], r["task_id"], r["stage"], r["index"]) for r in lines]
    assert len(keys) == len(set(keys)) == 24 + 24 * 11  # explain: 24; recode-format: 24 nominal problems + 10 copies of each
    assert first == lines[: len(first)]  # the judged samples were kept, not redone
    result = json.loads(out.read_text())["datasets"]
    assert result["humanevalpack-python:explain"]["greedy_pass_at_1"] == 1.0
    assert result["recode-format"]["metrics"]["robustness"]["greedy"]["problems"] == 24
