"""Evaluation: the pass@k estimator against hand values and brute-force enumeration; evaluation end
to end through the real sandbox with the real reference backend (canonical and buggy solutions) and
a real tiny random StarCoder; resuming from the per-sample JSONL; the CLI."""
from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from testkit import REPO

from rrtf.backends import build_backend
from rrtf.backends.reference import ReferenceBackend
from rrtf.datasets import DATASETS
from rrtf.datasets import load_dataset as _load
from rrtf.evaluate import EvalConfig, build_eval_backend, evaluate, pass_at_k
from rrtf.prompts import CONTINUATION_STOP, build_prompt, get_strategy, truncate_at_closing_brace
from sandbox import Sandbox, SandboxConfig
from sandbox.base.errors import RecordError
from sandbox.base.store import write_jsonl


def load_dataset(name):
    ds = _load(name)
    return ds.problems, ds.strategy


# --- pass@k ------------------------------------------------------------------------------------


def test_pass_at_k_hand_values():
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(5, 2))  # 1 - 3/10 = 0.7
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the pass rate
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 10) == 1.0
    assert pass_at_k(5, 4, 2) == 1.0  # n - c = 1 < k: every pair holds a pass
    assert pass_at_k(200, 1, 100) == pytest.approx(0.5)  # one pass among 200: half the 100-subsets hold it


def test_pass_at_k_is_vectorised_over_problems():
    out = pass_at_k([5, 10, 5], [2, 3, 0], 2)
    assert out.shape == (3,)
    assert out == pytest.approx([0.7, 1 - math.comb(7, 2) / math.comb(10, 2), 0.0])


def _brute_force(n: int, c: int, k: int) -> float:
    """Fraction of the k-subsets of n samples (c of them passing) that contain a pass."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    return sum(any(s) for s in subsets) / len(subsets)


def test_pass_at_k_matches_enumeration():
    for n in range(1, 8):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(_brute_force(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_rejects_impossible_counts():
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="at least 5 samples"):
        pass_at_k([10, 4], [1, 1], 5)
    with pytest.raises(ValueError, match="k >= 1"):
        pass_at_k(3, 1, 0)


# --- config and strategies ------------------------------------------------------------------------


def test_config_rejects_meaningless_settings():
    with pytest.raises(ValueError, match="between 1 and num_samples"):
        EvalConfig(num_samples=5, k=[1, 10])
    with pytest.raises(ValueError, match="temperature > 0"):
        EvalConfig(num_samples=4, temperature=0.0, k=[1])
    with pytest.raises(ValueError, match="unknown strategy"):
        EvalConfig(strategy="chat")


def test_config_from_yaml_and_typos_fail(tmp_path):
    from trl import TrlParser

    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump({"datasets": ["humaneval", "mbpp:validation"], "num_samples": 20, "k": [1, 10, 20],
                                    "temperature": 0.2, "greedy": False}))
    (cfg,) = TrlParser([EvalConfig]).parse_args_and_config(["--config", str(path), "--max_problems", "7"])
    assert (cfg.datasets, cfg.num_samples, cfg.k, cfg.temperature, cfg.greedy, cfg.max_problems) == (
        ["humaneval", "mbpp:validation"], 20, [1, 10, 20], 0.2, False, 7)
    path.write_text(yaml.safe_dump({"num_sample": 3}))
    with pytest.raises(ValueError, match="num_sample"):
        TrlParser([EvalConfig]).parse_args_and_config(["--config", str(path)])


def test_strategy_table_and_prompts():
    assert {name: spec.tasks["synthesize"] for name, spec in DATASETS.items() if name in ("humaneval", "mbpp", "tiny-tasks")} == {
        "humaneval": "continue", "mbpp": "instruct", "tiny-tasks": "instruct"}
    he = load_dataset("humaneval")[0][0]
    mbpp = load_dataset("mbpp")[0][0]
    cfg = EvalConfig(num_samples=0)
    assert get_strategy("continue").prompt(he, cfg.prompt_template) == he.prompt
    # Instruction prompts are the very text the sampler and trainer condition on.
    assert get_strategy("instruct").prompt(mbpp, cfg.prompt_template) == build_prompt(mbpp)
    body = "    return 1\n"
    for stop in CONTINUATION_STOP:
        assert get_strategy("continue").completion(he, body + stop + "junk()\n") == body
    assert get_strategy("instruct").completion(mbpp, "Here it is:\n```python\ndef f():\n    return 1\n```\nDone.") == "def f():\n    return 1\n"
    java_prefix = "class Solution {\n    public int f(int x) {\n        /* } */\n"
    assert truncate_at_closing_brace(java_prefix, "        return x;\n    }\n}\nclass Extra {}\n") == "        return x;\n    }\n}\n"
    with pytest.raises(ValueError, match="unknown dataset 'humaneva'"):
        load_dataset("humaneva")


# --- end to end through the real sandbox ------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(workers=2)) as sb:
        yield sb


def _problems(tmp_path: Path) -> dict:
    he = load_dataset("humaneval")[0][:4]
    jsonl = tmp_path / "problems.jsonl"  # a JSONL of Problem records is a dataset too
    write_jsonl(jsonl, [p.to_record() for p in load_dataset("mbpp")[0][:3]])
    return {"humaneval": he, str(jsonl): load_dataset(str(jsonl))[0], "heldout": load_dataset("heldout")[0][:3]}


def test_canonical_solutions_pass(sandbox, tmp_path):
    problems = _problems(tmp_path)
    cfg = EvalConfig(backend="reference", num_samples=2, k=[1, 2], output_file=str(tmp_path / "res.json"))
    backend = build_eval_backend(cfg, problems)
    result = evaluate(problems, backend, sandbox, cfg)
    assert set(result.datasets) == set(problems)
    for name, d in result.datasets.items():
        assert d.pass_at_k == {"pass@1": 1.0, "pass@2": 1.0}, name
        assert d.greedy_pass_at_1 == 1.0
        assert d.status_counts == {"passed": 2 * len(problems[name])}
    assert result.datasets["humaneval"].strategy == "continue"
    assert result.datasets[next(n for n in problems if n.endswith(".jsonl"))].strategy == "instruct"
    lines = (tmp_path / "res.samples.jsonl").read_text().splitlines()
    assert len(lines) == 3 * sum(len(p) for p in problems.values())  # 1 greedy + 2 sampled each
    assert "pass@1" in result.table() and "humaneval" in result.table()


def test_canonical_solutions_pass_as_instructions(sandbox):
    """HumanEval asked as an instruction: the whole function comes back in a code block and is
    judged on its own (with the prompt's imports)."""
    problems = {"humaneval": load_dataset("humaneval")[0][:4]}
    cfg = EvalConfig(backend="reference", strategy="instruct", num_samples=1, k=[1], output_file=None)
    result = evaluate(problems, build_eval_backend(cfg, problems), sandbox, cfg)
    assert result.datasets["humaneval"].strategy == "instruct"
    assert result.datasets["humaneval"].pass_at_k == {"pass@1": 1.0}


@pytest.mark.parametrize("language", ["go", "java", "cpp", "js"])
def test_canonical_solutions_pass_as_instructions_in_every_language(sandbox, language):
    """A code prompt asked as an instruction is judged as a whole program: of its prefix nothing but
    Python's imports is kept (a Go prompt's `import (` line alone would not parse)."""
    name = f"humanevalpack-{language}"
    problems = {name: load_dataset(name)[0][:2]}
    cfg = EvalConfig(backend="reference", strategy="instruct", num_samples=0, output_file=None)
    result = evaluate(problems, build_eval_backend(cfg, problems), sandbox, cfg)
    assert result.datasets[name].greedy_pass_at_1 == 1.0, result.datasets[name].failure_reasons


def test_buggy_solutions_score_what_they_pass(sandbox, tmp_path):
    """HumanEvalPack's buggy solutions fail their tests: half canonical, half buggy -> pass@1 = 0.5."""
    problems = load_dataset("humanevalpack-python")[0][:4]
    strategy = get_strategy("continue")
    answers = {strategy.prompt(p, EvalConfig(num_samples=0).prompt_template): (p.canonical_solution if i % 2 == 0 else p.buggy_solution)
               for i, p in enumerate(problems)}
    cfg = EvalConfig(num_samples=3, k=[1, 3], output_file=None)
    result = evaluate({"hep": problems}, ReferenceBackend(answers), sandbox, cfg)
    d = result.datasets["hep"]
    assert d.pass_at_k == {"pass@1": 0.5, "pass@3": 0.5}
    assert d.greedy_pass_at_1 == 0.5
    assert d.status_counts.get("passed") == 6 and sum(d.status_counts.values()) == 12
    assert sum(d.failure_reasons.values()) == 6 + 2  # sampled and greedy failures
    assert [(r.num_samples, r.num_passed) for r in result.problems] == [(3, 3), (3, 0), (3, 3), (3, 0)]
    assert [r.greedy_status == "passed" for r in result.problems] == [True, False, True, False]


def test_resumes_from_samples_file(sandbox, tmp_path):
    problems = {"humaneval": load_dataset("humaneval")[0][:4]}
    cfg = EvalConfig(backend="reference", num_samples=2, k=[1], output_file=str(tmp_path / "r.json"))
    first = evaluate(problems, build_eval_backend(cfg, problems), sandbox, cfg)
    samples = tmp_path / "r.samples.jsonl"
    lines = samples.read_text().splitlines(keepends=True)
    assert len(lines) == 12

    # Everything done: a rerun generates nothing.
    backend = build_eval_backend(cfg, problems)
    again = evaluate(problems, backend, sandbox, cfg)
    assert backend.calls == 0 and again.datasets == first.datasets

    # Killed mid-way, half a line written: the rest is generated once, nothing duplicated.
    samples.write_text("".join(lines[:5]) + lines[5][:20])
    backend = build_eval_backend(cfg, problems)
    resumed = evaluate(problems, backend, sandbox, cfg)
    assert backend.calls > 0 and resumed.datasets == first.datasets
    keys = [(r["stage"], r["task_id"], r["index"]) for r in map(json.loads, samples.read_text().splitlines())]
    assert len(keys) == len(set(keys)) == 12

    # A different setup must not silently mix with old samples.
    with pytest.raises(RecordError, match="fingerprint"):
        evaluate(problems, backend, sandbox, EvalConfig(backend="reference", num_samples=2, k=[1], temperature=0.2,
                                                        output_file=str(tmp_path / "r.json")))


@pytest.fixture(scope="module")
def random_model() -> str:
    from rrtf.tiny import ensure_tiny_model

    return str(ensure_tiny_model("random", progress=False))


def test_random_model_passes_nothing(sandbox, random_model):
    torch.set_num_threads(1)
    backend = build_backend("transformers", model_name_or_path=random_model)
    problems = {"heldout": load_dataset("heldout")[0][:3], "humaneval": load_dataset("humaneval")[0][:2]}
    cfg = EvalConfig(num_samples=2, k=[1, 2], max_new_tokens=16, output_file=None)
    result = evaluate(problems, backend, sandbox, cfg)
    for name, d in result.datasets.items():
        assert d.pass_at_k == {"pass@1": 0.0, "pass@2": 0.0} and d.greedy_pass_at_1 == 0.0, name
        assert sum(d.status_counts.values()) == 2 * len(problems[name])
        assert "passed" not in d.status_counts


@pytest.mark.slow
def test_cli_writes_json(tmp_path, random_model):
    out = tmp_path / "eval" / "heldout.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "rrtf.evaluate", "--model_name_or_path", random_model, "--datasets", "heldout",
         "--max_problems", "3", "--num_samples", "2", "--k", "1", "2", "--max_new_tokens", "16",
         "--sandbox_workers", "1", "--output_file", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "greedy@1" in proc.stdout and "heldout" in proc.stdout
    data = json.loads(out.read_text())
    heldout = data["datasets"]["heldout"]
    assert heldout["num_problems"] == 3 and set(heldout["pass_at_k"]) == {"pass@1", "pass@2"}
    assert heldout["greedy_pass_at_1"] == 0.0
    assert len(data["problems"]) == 3 and data["config"]["model_name_or_path"] == random_model
    assert data["config"]["backend_identity"]["precision"] == "float32"  # what answered, at which precision
    assert len(out.with_name("heldout.samples.jsonl").read_text().splitlines()) == 3 * 3
    assert np.isclose(sum(heldout["status_counts"].values()), 6)
