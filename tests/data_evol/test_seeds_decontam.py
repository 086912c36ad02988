"""Seed loading (formats, errors naming file/line/field, counted skips) and decontamination against
the registered benchmarks, including the standalone `python -m data_evol decontaminate`."""
from __future__ import annotations

import json

import pytest
from testkit import run_module

from data_evol.config import DecontamSettings
from data_evol.decontam import BenchmarkIndex, contamination
from data_evol.seeds import load_seeds
from rrtf.datasets import load_dataset
from sandbox.base.errors import RecordError
from sandbox.base.records import Problem


def test_code_alpaca_array_problems_and_datasets(tmp_path):
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(json.dumps([{"instruction": "Sort a list.", "input": "[3, 1]", "output": "sorted(x)"},
                                  {"instruction": "Sort a list.", "input": "[3, 1]", "output": "dup"},
                                  {"instruction": "Reverse a string.", "input": "", "output": ""}], indent=2))
    seeds, counts = load_seeds(str(alpaca))
    assert [s.instruction for s in seeds] == ["Sort a list.\n[3, 1]", "Reverse a string."]
    assert counts == {"read": 3, "bad": 0, "duplicate": 1} and seeds[0].origin.endswith("alpaca.json:2")
    problems = load_dataset("tiny-tasks:train").problems[:3]
    pfile = tmp_path / "p.jsonl"
    pfile.write_text("".join(json.dumps(p.to_record()) + "\n" for p in problems))
    seeds, _ = load_seeds(str(pfile))
    assert seeds[0].id == problems[0].task_id and seeds[0].reference_tests == problems[0].test_list
    import datasets

    ds = datasets.Dataset.from_list([{"instruction": "Add two numbers.", "input": "", "output": "a + b"}])
    assert load_seeds(ds)[0][0].instruction == "Add two numbers."
    ds.save_to_disk(str(tmp_path / "ds"))
    assert load_seeds(str(tmp_path / "ds"))[0][0].instruction == "Add two numbers."


def test_bad_seeds_name_file_line_and_field_or_are_counted(tmp_path):
    arr = tmp_path / "a.json"
    arr.write_text('[\n {"instruction": "ok task here"},\n {"input": "no instruction"}\n]')
    with pytest.raises(RecordError, match=r"a\.json:3: field 'instruction': missing field"):
        load_seeds(str(arr))
    lines = tmp_path / "b.jsonl"
    lines.write_text('{"instruction": "fine task"}\n{"instruction": 7}\n{broken\n{"instruction": "another task"}\n')
    with pytest.raises(RecordError, match=r"b\.jsonl:2: field 'instruction': expected a string"):
        load_seeds(str(lines))
    seeds, counts = load_seeds(str(lines), skip_bad=True)
    assert len(seeds) == 2 and counts["bad"] == 2
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_seeds(str(tmp_path / "nope.json"))


@pytest.fixture(scope="module")
def index():
    return BenchmarkIndex.from_registry()


def _flag(index, text, solution=""):
    return contamination(index.scores(text, solution), DecontamSettings())


def test_verbatim_reworded_and_solution_copies_are_caught(index):
    he = {p.task_id: p for p in load_dataset("humaneval").problems}
    p = he["HumanEval/0"]
    hit = _flag(index, f"Please solve this:\n{p.prompt}")
    assert hit is not None and hit.benchmark_task_id == "HumanEval/0" and hit.method == "ngram"
    reworded = "In Python: check whether, in a given list of numbers, any two numbers are closer to each other than the given threshold."
    hit = _flag(index, reworded)
    assert hit is not None and hit.benchmark_task_id == "HumanEval/0" and hit.method == "near"
    mbpp = next(p for p in load_dataset("mbpp").problems if len(p.canonical_solution) > 200)
    hit = _flag(index, "Implement the helper.", solution=mbpp.canonical_solution)
    assert hit is not None and hit.method == "code_ngram" and hit.benchmark == "mbpp"
    for clean in ("Write a function solve that returns x plus 3.", "Create a SQL query listing customers from Paris.",
                  "Describe the difference between TCP and UDP."):
        assert _flag(index, clean) is None


def test_a_newly_registered_benchmark_is_picked_up(monkeypatch):
    from rrtf.datasets import DATASETS, DatasetSpec

    secret = Problem(task_id="Secret/1", prompt="Compute the zorblax checksum of the quantum ledger entries.", test_list=["assert True"])
    spec = DatasetSpec("secret-bench", lambda split: [secret], ("test",), "test")
    monkeypatch.setitem(DATASETS._entries, "secret-bench", spec)
    hit = _flag(BenchmarkIndex.from_registry(), "Please compute the zorblax checksum of the quantum ledger entries in Python.")
    assert hit is not None and (hit.benchmark, hit.benchmark_task_id) == ("secret-bench", "Secret/1")


@pytest.mark.slow
def test_decontaminate_command(tmp_path):
    he = load_dataset("humaneval").problems[5]
    rows = [{"instruction": "Reverse a linked list.", "output": "..."}, {"instruction": he.prompt, "extra": 1},
            {"prompt": "Write a Python function that finds the largest integers from a given list of numbers using the heap queue algorithm."}]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    proc = run_module("data_evol", "decontaminate", "--input", str(src), "--output_dir", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    kept = [json.loads(x) for x in (out / "kept.jsonl").read_text().splitlines()]
    removed = [json.loads(x) for x in (out / "removed.jsonl").read_text().splitlines()]
    assert kept == [rows[0]]
    assert removed[0]["benchmark_task_id"] == he.task_id and removed[0]["extra"] == 1
    assert removed[1]["benchmark"] == "mbpp" and set(removed[1]) >= {"benchmark", "benchmark_task_id", "method", "score"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "x"}\n{nope\n')
    proc = run_module("data_evol", "decontaminate", "--input", str(bad), "--output_dir", str(out))
    assert proc.returncode == 2 and "bad.jsonl:2" in proc.stderr and "malformed JSON" in proc.stderr
