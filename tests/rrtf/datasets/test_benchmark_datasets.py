"""The benchmark registrations: sizes, what each task shows the model, and bad records named by file,
line and field (the sandbox runs them in tests/rrtf/evaluate/test_benchmarks.py)."""
from __future__ import annotations

import pytest

from rrtf.datasets import load_dataset, spec_of
from rrtf.datasets.leetcode import to_problem
from rrtf.datasets.recode import parse_variant
from sandbox.base.errors import RecordError


@pytest.mark.parametrize("name,count", [("humaneval+", 164), ("mbpp+", 378), ("leetcode", 228), ("recode-docstring", 164 + 6232),
                                        ("recode-func_name", 164 + 4264), ("recode-format", 164 + 1640), ("recode-natgen", 164 + 2460),
                                        ("humanevalpack-js:explain", 164), ("humanevalpack-go:fix-tests", 164)])
def test_sizes(name, count):
    assert len(load_dataset(name).problems) == count


def test_humanevalpack_tasks_show_what_octopack_shows():
    syn, fix, fix_tests, explain = (load_dataset(f"humanevalpack-python:{t}").problems[0] for t in ("synthesize", "fix", "fix-tests", "explain"))
    docstring_line = "Check if in given list of numbers"
    assert syn.code_prefix == fix.code_prefix and docstring_line in fix.code_prefix  # fix continues the documented prompt
    assert fix.prompt.endswith("Fix bugs in has_close_elements.") and "def check" not in fix.prompt
    assert "def check" in fix_tests.prompt and docstring_line not in fix_tests.prompt  # fix-tests: bare code + tests
    assert fix_tests.code_prefix == explain.code_prefix and fix_tests.code_prefix.rstrip().endswith("-> bool:")
    from rrtf.datasets.humanevalpack import _records

    limit = len(_records("python")[0][1]["docstring"])
    assert docstring_line not in explain.prompt and explain.prompt.endswith(f"using at most {limit} characters.")
    assert fix.buggy_solution and fix.buggy_solution != fix.canonical_solution


def test_mbppplus_keeps_its_prompt_for_the_expected_outputs_and_judges_whole_programs():
    p = load_dataset("mbpp+").problems[0]
    assert p.prompt.startswith('"""\nWrite a function') and p.code_prefix == "" and p.test_format == "evalplus"
    assert load_dataset("mbpp+").strategy == "instruct"


def test_recode_task_ids_and_variants():
    assert parse_variant("HumanEval/12/VarRenamerRN/s3") == ("HumanEval/12", ("VarRenamerRN", 3))
    assert parse_variant("HumanEval/12") == ("HumanEval/12", None)
    partial = load_dataset("recode-natgen").problems[0]
    assert partial.task_id == "HumanEval/0" and "distance = abs(elem - elem2)" in partial.prompt  # the nominal partial code
    assert spec_of("recode-docstring").benchmark is False  # perturbed HumanEval: HumanEval itself is decontaminated against


def test_leetcode_binds_the_method_and_names_bad_records():
    rec = {"task_id": "two-sum", "query": "Solve it.", "prompt": "from typing import *\n", "entry_point": "Solution().twoSum",
           "test": "def check(candidate):\n    assert candidate(nums=[1, 2], target=3) == [0, 1]\n", "completion": "class Solution: ...",
           "difficulty": "Easy"}
    p = to_problem(rec, "lc.jsonl:7")
    assert p.entry_point == "Solution" and p.test.splitlines()[1] == "    candidate = candidate().twoSum"
    assert spec_of("leetcode").category("shortest-distance-after-road-addition-queries-i") == "Medium"
    with pytest.raises(RecordError, match=r"lc.jsonl:7.*entry_point"):
        to_problem({**rec, "entry_point": "twoSum"}, "lc.jsonl:7")
    with pytest.raises(RecordError, match=r"lc.jsonl:8.*difficulty"):
        to_problem({**rec, "difficulty": "Trivial"}, "lc.jsonl:8")
    with pytest.raises(RecordError, match=r"lc.jsonl:9.*test"):
        to_problem({**rec, "test": "assert True\n"}, "lc.jsonl:9")
