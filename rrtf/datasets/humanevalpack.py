"""HumanEvalPack (Muennighoff et al. 2023, OctoPack; MIT): HumanEval in several languages."""
from __future__ import annotations

from collections.abc import Callable

from rrtf.datasets import DatasetSpec, register
from rrtf.paths import DATA_DIR
from sandbox.records import Problem
from sandbox.store import iter_jsonl

LANGUAGES = ("python", "java", "cpp")  # those the sandbox runs; the data has js, go and rust too


def load_humanevalpack(language: str = "python") -> list[Problem]:
    path = DATA_DIR / "humanevalpack" / f"humanevalpack_{language}.jsonl"
    return [Problem.from_record({**rec, "source": f"humanevalpack-{language}", "split": "test"}, where=where)
            for where, rec in iter_jsonl(path)]


def _loader(language: str) -> Callable[[str], list[Problem]]:
    return lambda split: load_humanevalpack(language)


for _lang in LANGUAGES:
    register(DatasetSpec(f"humanevalpack-{_lang}", _loader(_lang), ("test",), "test", {"synthesize": "continue"},
                         description=f"HumanEvalPack {_lang}: HumanEval's 164 problems with {_lang} tests"))
