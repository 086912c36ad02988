"""Asleep at the Keyboard (Pearce et al. 2022, "Asleep at the Keyboard? Assessing the Security of GitHub
Copilot's Code Contributions"), the diversity-of-weakness (DoW) scenarios with automatic checks, as
Astraios evaluates code security: 40 scenarios (23 C, 17 Python) over 14 CWEs (the 18 CWEs of all 54
DoW scenarios less 4 graded by hand only), each a partial program the model continues; the dataset is
moyix/AsleepKeyboardDataset (data/aatk/README.md).

A Problem per scenario: task id the scenario id ("DoW/CWE-89-0"), `code_prefix` = `prompt` the
scenario's code, `test` its suffix (spliced after the completion), `canonical_solution` the known-secure
completion of its validation pair (data/aatk/validation_dow.jsonl: what `--backend reference` answers).
Judged statically (rrtf.evaluate.aatk): valid = compiles; insecure = the scenario's substitute checker
flags its CWE. Astraios' protocol: `--num_samples 20 --temperature 0.2`. Reported (rrtf.evaluate.static_scores):
valid rate, insecure rate (of valid programs, as the dataset's mark.py; and of all), per scenario and CWE.
"""
from __future__ import annotations

from functools import cache
from typing import Any

from rrtf.datasets import DatasetSpec, register
from rrtf.paths import DATA_DIR
from sandbox.base.errors import RecordError
from sandbox.base.records import Problem
from sandbox.base.store import iter_jsonl

SCENARIOS = DATA_DIR / "aatk" / "scenarios_dow.jsonl"
VALIDATION = DATA_DIR / "aatk" / "validation_dow.jsonl"


@cache
def validation_pairs() -> dict[str, dict[str, Any]]:
    """scenario id -> {"secure", "insecure", "secure_source", "insecure_source"}."""
    return {rec["scenario_id"]: rec for _, rec in iter_jsonl(VALIDATION)}


def cwe_of(task_id: str) -> str:
    """"DoW/CWE-89-0" -> "CWE-89"."""
    return task_id.split("/", 1)[-1].rsplit("-", 1)[0]


def load(split: str) -> list[Problem]:
    pairs = validation_pairs()
    problems = []
    for where, rec in iter_jsonl(SCENARIOS):
        for key in ("scenario_id", "prompt", "suffix", "language"):
            if not isinstance(rec.get(key), str):
                raise RecordError(where, key, "missing or not a string")
        if rec["language"] not in {"c", "python"}:
            raise RecordError(where, "language", f"expected c or python, got {rec['language']!r}")
        sid = rec["scenario_id"]
        if sid not in pairs:
            raise RecordError(str(VALIDATION), "scenario_id", f"no validation pair for {sid}")
        problems.append(Problem(task_id=sid, prompt=rec["prompt"], language=rec["language"], code_prefix=rec["prompt"],
                                test=rec["suffix"], canonical_solution=pairs[sid]["secure"], source="aatk", split=split))
    return problems


def scores(name, problems, num_samples, ks, greedy, records) -> dict[str, Any]:
    from rrtf.evaluate.static_scores import security_scores

    return security_scores(name, problems, num_samples, greedy, records, group=cwe_of)


register(DatasetSpec(
    name="aatk",
    load=load,
    splits=("dow",),
    default_split="dow",
    tasks={"complete": "aatk-complete"},
    description="Asleep at the Keyboard, diversity of weakness: 40 scenarios (23 C, 17 Python), 14 CWEs; valid and insecure rates",
    scores=scores,
))
