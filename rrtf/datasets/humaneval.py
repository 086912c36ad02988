"""HumanEval (Chen et al. 2021, MIT): 164 Python functions, continued from their code prompt."""
from __future__ import annotations

from rrtf.datasets import DatasetSpec, register
from rrtf.paths import DATA_DIR
from sandbox.base.records import Problem
from sandbox.base.store import iter_jsonl

PATH = DATA_DIR / "humaneval" / "HumanEval.jsonl.gz"


def load_humaneval(split: str = "test") -> list[Problem]:
    return [Problem.from_record({**rec, "source": "humaneval", "split": "test"}, where=where) for where, rec in iter_jsonl(PATH)]


register(DatasetSpec("humaneval", load_humaneval, ("test",), "test", {"synthesize": "continue"},
                     description="HumanEval: 164 Python functions from docstrings (continue the code prompt)"))
