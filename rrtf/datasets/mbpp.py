"""MBPP (Austin et al. 2021, CC BY 4.0): 974 crowd-sourced Python tasks, asked as instructions."""
from __future__ import annotations

from rrtf.datasets import DatasetSpec, register
from rrtf.paths import DATA_DIR
from sandbox.base.records import Problem
from sandbox.base.store import iter_jsonl

PATH = DATA_DIR / "mbpp" / "mbpp.jsonl"
# MBPP's published splits, by task id.
SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}


def load_mbpp(split: str = "test") -> list[Problem]:
    lo, hi = SPLITS[split]
    problems = []
    for where, rec in iter_jsonl(PATH):
        if lo <= rec.get("task_id", 0) <= hi:
            problem = Problem.from_record(rec, where=where)
            problem.split = split
            problems.append(problem)
    return problems


register(DatasetSpec("mbpp", load_mbpp, tuple(SPLITS), "test", {"synthesize": "instruct"}, train_split="train", eval_split="test",
                     description="MBPP: 974 basic Python tasks with 3 asserts each (instruction + one example test)"))
