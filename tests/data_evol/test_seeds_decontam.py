"""Seed loading (formats, errors naming file/line/field, counted skips) and decontamination against
the registered benchmarks, including the standalone `python -m data_evol decontaminate`."""
from __future__ import annotations

import json

import pytest
from testkit import run_module

from data_evol.config import DecontamSettings
from data_evol.decontam import BenchmarkIndex, contamination
from data_evol.decontam_text import features, prose_words, statement
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


def test_an_oversized_seed_is_refused_in_the_input_before_anything_is_written(tmp_path):
    """A seed over the text limit was copied into the output dir first: the error named the copy, --skip_bad_seeds did
    not skip it, and every rerun failed on the copy (issue 18). It is checked where it is read now."""
    seeds = tmp_path / "s.jsonl"
    seeds.write_text(json.dumps({"instruction": "Add two numbers."}) + "\n" + json.dumps({"instruction": "x" * 1_000_001}) + "\n")
    with pytest.raises(RecordError, match=r"s\.jsonl:2: field 'instruction': 1,000,001 characters is over the limit"):
        load_seeds(str(seeds))
    kept, counts = load_seeds(str(seeds), skip_bad=True)
    assert [s.instruction for s in kept] == ["Add two numbers."] and counts["bad"] == 1


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


# Light rewordings of real tasks (word order, word forms, a phrase, the benchmark's scaffolding dropped or another
# wrapper added): a person calls each the same task. Written here; benchmarks/data/decontam_rewordings.json holds others.
LIGHT = [
    ("MBPP/225", "Write a python function which identifies the minimum element of a rotated sorted array."),
    ("MBPP/233", "Write a function that computes the lateral surface area of a cylinder."),
    ("MBPP/2", "Write a function to find the shared elements from the given two lists. Your code should pass these tests:\n"
               "assert set(similar_elements((3, 4, 5, 6), (5, 7, 4, 10))) == set((4, 5))"),
    ("HumanEval/16", "Given a string, count how many distinct characters it consists of, regardless of case."),
    ("HumanEval/57", "Return True when the elements of a list are monotonically decreasing or increasing."),
]
# Real Code Alpaca 2K instructions that look like a benchmark task (near score 0.36-0.43 against the one named) and are not it.
LOOKALIKES = {
    "Write a Python function to count the number of words in a sentence.": "MBPP/667 counts vowels",
    "How would you sort a list of integer numbers in descending order?": "Mbpp/4: the n largest, by heap queue",
    "Write a code to check if a given tree is a perfect binary tree.": "LeetCode: k-th largest perfect subtree size",
    "Write a function to find the type of a variable": "MBPP/826: the type of a triangle",
    "Generate a random integer in JavaScript.": "Asleep at the Keyboard CWE-190",
}


def _same_task(a: str, b: str) -> bool:  # HumanEval/0 = Python/0 = CPP/0; MBPP/2 = Mbpp/2
    return a.split("/")[-1].lower() == b.split("/")[-1].lower()


@pytest.mark.parametrize("task_id,text", LIGHT, ids=[t for t, _ in LIGHT])
def test_a_light_rewording_of_a_benchmark_task_is_removed_as_that_task(index, task_id, text):
    hit = _flag(index, text)
    assert hit is not None and _same_task(hit.benchmark_task_id, task_id), (text, index.scores(text))


def test_clean_code_alpaca_tasks_that_look_like_benchmark_tasks_are_kept(index):
    from rrtf.paths import DATA_DIR

    alpaca = {r["instruction"] for r in json.loads((DATA_DIR / "codealpaca/code_alpaca_2k.json").read_text())}
    for text in LOOKALIKES:
        assert text in alpaca  # real seeds, not written for the test
        near = next(m for m in index.scores(text) if m.method == "near")
        assert near.score > 0.3 and _flag(index, text) is None, (text, near)


def test_verbatim_copies_of_each_kind_of_prompt_are_removed(index):
    for name in ("mbpp", "mbpp+", "leetcode", "humanevalpack-cpp", "aatk"):
        p = load_dataset(name).problems[7]
        hit = _flag(index, f"Here is a task for you.\n{p.prompt}\nThanks!")
        assert hit is not None and _same_task(hit.benchmark_task_id, p.task_id) and hit.method == "ngram", name


def test_the_statement_leaves_out_each_benchmarks_scaffolding():
    """What the near check compares: the task, without signature, examples, tests or prompt headers."""
    he = load_dataset("humaneval").problems[0]
    assert statement(he.prompt) == "Check if in given list of numbers, are any two numbers closer to each other than given threshold."
    cpp = load_dataset("humanevalpack-cpp").problems[0]
    assert statement(cpp.prompt) == "Check if in given vector of numbers, are any two numbers closer to each other than given threshold."
    go = next(p for p in load_dataset("humanevalpack-go").problems if p.task_id == "Go/120")
    assert statement(go.prompt).startswith("Given an array arr of integers") and "Example" not in statement(go.prompt)
    lc = load_dataset("leetcode").problems[0]
    assert statement(lc.prompt).startswith("You are given an integer n") and "expert Python programmer" not in statement(lc.prompt)
    mbpp_plus = load_dataset("mbpp+").problems[0]
    assert statement(mbpp_plus.prompt) == "Write a function to find the shared elements from the given two lists."
    # word forms and order: "identifies" = "identify", "sorted and rotated" = "rotated sorted"
    assert features(prose_words("identifies the sorted and rotated array")) == features(prose_words("identify the rotated sorted arrays"))


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
