"""EvalPlus ground truth computed by the real warm truth server (bubblewrap, a fork per problem), on a
cold cache: the outputs equal the canonical solution's own outputs run here in-process, MBPP+'s
inputs arrive rebuilt (tuples), and a canonical solution that raises, dies, hangs or changes its
interpreter's state costs only its own problem."""
from __future__ import annotations

import copy
import json
import threading

import pytest

from rrtf.paths import DATA_DIR
from sandbox import Problem
from sandbox import evalplus_truth as truth_mod
from sandbox.base.store import iter_jsonl
from sandbox.evalplus_truth import GroundTruthError, ground_truth, inputs
from sandbox.isolation import require_isolation
from sandbox.worker.plaindata import literal


@pytest.fixture(autouse=True)
def cold_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RRTF_CACHE", str(tmp_path))
    monkeypatch.setattr(truth_mod, "_MEMORY", {})


def isolation() -> str:
    return require_isolation(None, False)


def first(name: str, task_id: str) -> Problem:
    return next(Problem.from_record(rec, where=where) for where, rec in iter_jsonl(DATA_DIR / "evalplus" / name)
                if rec["task_id"] == task_id)


def in_process(problem: Problem, part: str) -> list:
    g = {"__name__": "__main__"}
    exec(problem.prompt + problem.canonical_solution, g)
    return [g[problem.entry_point](*copy.deepcopy(inp)) for inp in inputs(problem, part)]


def synthetic(task_id: str, body: str, base: list) -> Problem:
    return Problem.from_record({"task_id": task_id, "prompt": "def f(x):\n", "canonical_solution": body, "entry_point": "f",
                                "base_input": base, "plus_input": []})


@pytest.mark.parametrize(("name", "task_id"), [("HumanEvalPlus.jsonl.gz", "HumanEval/0"), ("MbppPlus.jsonl.gz", "Mbpp/116")])
def test_outputs_equal_the_canonical_solution_run_in_process(name, task_id):
    problem = first(name, task_id)
    truth = ground_truth(problem, isolation())
    for part, got in (("base", truth.base), ("plus", truth.plus)):
        expected = in_process(problem, part)
        assert len(got) == len(expected) > 0
        assert [literal(text) for text in got] == expected, part
    assert all(t >= 0 for t in truth.base_time + truth.plus_time)
    assert list((truth_mod.cache_root() / "evalplus").glob("*.json")), "cached on disk"


def test_mbpp_inputs_arrive_rebuilt_as_evalplus_rebuilds_them():
    # MBPP+ stores Mbpp/116's tuple argument as a JSON list; evalplus's canonical solution gets a tuple.
    problem = Problem.from_record({"task_id": "Mbpp/116", "prompt": "", "entry_point": "f",
                                   "canonical_solution": "def f(nums):\n    return type(nums).__name__\n",
                                   "base_input": [[[1, 2, 3]]], "plus_input": [[[4]]]})
    truth = ground_truth(problem, isolation())
    assert [literal(v) for v in truth.base + truth.plus] == ["tuple", "tuple"]


def test_a_failing_canonical_costs_only_its_own_problem():
    good = synthetic("T/good", "    return x * 2\n", [[1], [2]])
    for body, says in (("    raise KeyError('boom')\n", "KeyError"),
                       ("    import os\n    os._exit(3)\n", "ended"),
                       ("    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n", "ended")):
        with pytest.raises(GroundTruthError, match=says) as err:
            ground_truth(synthetic("T/bad", body, [[1]]), isolation())
        assert "T/bad" in str(err.value)
        assert [literal(v) for v in ground_truth(good, isolation()).base] == [2, 4]
        truth_mod._MEMORY.clear()


def test_a_hang_is_cut_at_the_limit_and_the_server_replaced(monkeypatch):
    monkeypatch.setattr(truth_mod, "GROUND_TRUTH_TIMEOUT_S", 2.0)
    with pytest.raises(GroundTruthError, match="timeout"):
        ground_truth(synthetic("T/hang", "    while True:\n        pass\n", [[1]]), isolation())
    assert [literal(v) for v in ground_truth(synthetic("T/after", "    return -x\n", [[5]]), isolation()).base] == [-5]


def test_each_problem_starts_from_a_fresh_interpreter_state():
    spoil = synthetic("T/spoil", "    import math\n    math.pi = 3\n    return math.pi\n", [[0]])
    read = synthetic("T/read", "    import math\n    return math.pi\n", [[0]])
    assert literal(ground_truth(spoil, isolation()).base[0]) == 3
    assert literal(ground_truth(read, isolation()).base[0]) == 3.141592653589793


def test_threads_wanting_the_same_problem_compute_it_once(monkeypatch):
    calls = []
    real = truth_mod._compute
    monkeypatch.setattr(truth_mod, "_compute", lambda p, iso: calls.append(p.task_id) or real(p, iso))
    problem = synthetic("T/slow", "    import time\n    time.sleep(0.5)\n    return x\n", [[1]])
    results = []
    threads = [threading.Thread(target=lambda: results.append(ground_truth(problem, isolation()))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["T/slow"] and len(results) == 3 and all(r is results[0] for r in results)


def test_a_cached_expected_output_that_is_not_plain_data_is_refused():
    """The cache is read back as text; the plan parses every text as plain data, never as code."""
    from sandbox.evalplus import evalplus_plan

    problem = synthetic("T/poisoned", "    return x\n", [[1], [2]])
    truth = ground_truth(problem, isolation())
    truth_mod._MEMORY.clear()
    path = truth_mod.cache_root() / "evalplus" / f"{truth_mod.cache_key(problem)}.json"
    path.write_text(json.dumps({**truth.__dict__, "base": [truth.base[0], "__import__('os').getcwd()"]}))
    with pytest.raises(GroundTruthError, match=r"T/poisoned.*base\[1\]"):
        evalplus_plan(problem, isolation())
