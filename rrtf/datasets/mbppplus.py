"""MBPP+ (EvalPlus v0.2.0; Apache-2.0): 378 sanitized MBPP tasks judged on their original inputs
(`base_input`) and EvalPlus's extra ones (`plus_input`). The record's prompt is a docstring holding the
task and one example assert; it is asked as an instruction (verbatim, as evalplus's instruct prompt
quotes it) and the answer is a whole program (no code prefix). The prompt stays the record's own: the
sandbox computes the expected outputs by running prompt + canonical solution, as evalplus does.
Base and plus pass@k are reported."""
from __future__ import annotations

from rrtf.datasets import DatasetSpec, register
from rrtf.paths import DATA_DIR
from sandbox.base.records import Problem
from sandbox.base.store import iter_jsonl

PATH = DATA_DIR / "evalplus" / "MbppPlus.jsonl.gz"


def load_mbppplus(split: str = "test") -> list[Problem]:
    return [Problem.from_record({**rec, "code_prefix": "", "source": "mbpp+", "split": "test"}, where=where) for where, rec in iter_jsonl(PATH)]


register(DatasetSpec("mbpp+", load_mbppplus, ("test",), "test", {"synthesize": "instruct"},
                     description="MBPP+ (EvalPlus): 378 MBPP tasks, base + plus inputs, asked as instructions; base and plus pass@k"))
