"""LeetCode (LeetCodeDataset v0.3.1 test split, newfacade; MIT): 228 problems published after
2024-07 (Easy 48, Medium 101, Hard 79), asked with the dataset's own instruction (`query`: the
statement and the `class Solution` starter code); the answer's code runs after the dataset's
prelude (imports, ListNode/TreeNode helpers) and is judged by its `check(candidate)` asserts.

The entry point is `Solution().method`: the test's candidate is bound to one `Solution()` instance
and its method, as the dataset's own harness calls `check(Solution().method)` (the sandbox calls the
class, then the method, in the candidate's process). Evaluation reports pass@k per difficulty.
"""
from __future__ import annotations

import functools
import re

from rrtf.datasets import DatasetSpec, register
from rrtf.paths import DATA_DIR
from sandbox.base.errors import RecordError
from sandbox.base.records import Problem
from sandbox.base.store import iter_jsonl

PATH = DATA_DIR / "leetcode" / "LeetCodeDataset-v0.3.1-test.jsonl.gz"
ENTRY = re.compile(r"^(\w+)\(\)\.(\w+)$")
CHECK = "def check(candidate):\n"
DIFFICULTIES = ("Easy", "Medium", "Hard")


def bind_method(test: str, cls: str, method: str, where: str) -> str:
    """`def check(candidate): ...` with the candidate (the class) bound to one instance's method first."""
    if not test.startswith(CHECK):
        raise RecordError(where, "test", f"expected the test to start with {CHECK!r}")
    return f"{CHECK}    candidate = candidate().{method}\n{test[len(CHECK):]}"


def to_problem(rec: dict, where: str) -> Problem:
    for field in ("task_id", "query", "prompt", "entry_point", "test", "completion", "difficulty"):
        if not isinstance(rec.get(field), str):
            raise RecordError(where, field, f"expected a string, got {type(rec.get(field)).__name__}")
    m = ENTRY.match(rec["entry_point"])
    if not m:
        raise RecordError(where, "entry_point", f"expected 'Class().method', got {rec['entry_point']!r}")
    if rec["difficulty"] not in DIFFICULTIES:
        raise RecordError(where, "difficulty", f"expected one of {', '.join(DIFFICULTIES)}, got {rec['difficulty']!r}")
    cls, method = m.groups()
    return Problem.from_record({
        "task_id": rec["task_id"], "prompt": rec["query"], "code_prefix": rec["prompt"], "entry_point": cls,
        "test": bind_method(rec["test"], cls, method, where), "canonical_solution": rec["completion"],
        "source": "leetcode", "split": "test"}, where=where)


def load_leetcode(split: str = "test") -> list[Problem]:
    return [to_problem(rec, where) for where, rec in iter_jsonl(PATH)]


@functools.cache
def difficulties() -> dict[str, str]:
    return {rec["task_id"]: rec["difficulty"] for _, rec in iter_jsonl(PATH)}


def difficulty(task_id: str) -> str:
    return difficulties().get(task_id, "unknown")


register(DatasetSpec("leetcode", load_leetcode, ("test",), "test", {"synthesize": "instruct-prelude"}, category=difficulty,
                     description="LeetCodeDataset test (228 problems after 2024-07): class Solution answers; pass@k by difficulty"))
