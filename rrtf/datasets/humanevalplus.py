"""HumanEval+ (Liu et al. 2023, EvalPlus v0.1.10; Apache-2.0): HumanEval's 164 prompts, judged on the
original inputs (`base_input`) and EvalPlus's extra ones (`plus_input`) against the canonical solution's
outputs (sandbox/evalplus.py). Evaluation reports base pass@k (HumanEval's inputs) and plus pass@k (all)."""
from __future__ import annotations

from rrtf.datasets import DatasetSpec, register
from rrtf.paths import DATA_DIR
from sandbox.base.records import Problem
from sandbox.base.store import iter_jsonl

PATH = DATA_DIR / "evalplus" / "HumanEvalPlus.jsonl.gz"


def load_humanevalplus(split: str = "test") -> list[Problem]:
    return [Problem.from_record({**rec, "source": "humaneval+", "split": "test"}, where=where) for where, rec in iter_jsonl(PATH)]


register(DatasetSpec("humaneval+", load_humanevalplus, ("test",), "test", {"synthesize": "continue"},
                     description="HumanEval+ (EvalPlus): HumanEval's 164 prompts, base + plus inputs; base and plus pass@k"))
