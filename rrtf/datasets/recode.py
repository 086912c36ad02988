"""ReCode (Wang et al. 2022, amazon-science/recode; Apache-2.0): HumanEval under four families of
perturbations, each perturbation type with up to 5 seeds (randomised types; deterministic ones have
one), plus the nominal problems the robustness metrics compare against:

| dataset | family (ReCode's name) | perturbs | nominal |
|---|---|---|---|
| recode-docstring | nlaugmenter | the docstring's English | HumanEval |
| recode-func_name | func_name | the function's name | HumanEval |
| recode-format | format | the layout of the *partial code* | HumanEval partial code |
| recode-natgen | natgen | the syntax of the *partial code* | HumanEval partial code |

format and natgen perturb a partial solution (prompt + the first half of the canonical body), so
their nominal problems are ReCode's `humaneval_partial` (run_robust.py compares them with the
`{dataset}_partial` nominal run). Task ids: the nominal `HumanEval/0`, the variants
`HumanEval/0/<perturbation>/s<seed>`. Evaluation reports RP/RD/RR@k per perturbation type and for
the family (rrtf.evaluate.robustness). `max_problems` counts base problems: a subset keeps every
variant of the problems it keeps.
"""
from __future__ import annotations

from collections.abc import Callable

from rrtf.datasets import DatasetSpec, register
from rrtf.paths import DATA_DIR
from sandbox.base.errors import RecordError
from sandbox.base.records import Problem
from sandbox.base.store import iter_jsonl

FAMILIES = {"docstring": "nlaugmenter", "func_name": "func_name", "format": "format", "natgen": "natgen"}
PARTIAL_FAMILIES = ("format", "natgen")  # their perturbations apply to partial code
NOMINAL = {"full": DATA_DIR / "humaneval" / "HumanEval.jsonl.gz", "partial": DATA_DIR / "recode" / "humaneval_partial.jsonl.gz"}


def variant_id(task_id: str, perturbation: str, seed: int) -> str:
    return f"{task_id}/{perturbation}/s{seed}"


def parse_variant(task_id: str) -> tuple[str, tuple[str, int] | None]:
    """(base task id, (perturbation, seed) or None for the nominal problem)."""
    parts = task_id.split("/")
    if len(parts) == 4 and parts[3].startswith("s") and parts[3][1:].isdigit():
        return f"{parts[0]}/{parts[1]}", (parts[2], int(parts[3][1:]))
    return task_id, None


def base_task(task_id: str) -> str:
    return parse_variant(task_id)[0]


def variant(task_id: str) -> tuple[str, int] | None:
    return parse_variant(task_id)[1]


def load_recode(family: str) -> list[Problem]:
    source = f"recode-{family}"
    nominal_kind = "partial" if family in PARTIAL_FAMILIES else "full"
    problems = []
    for where, rec in iter_jsonl(NOMINAL[nominal_kind]):
        keep = {k: rec[k] for k in ("task_id", "prompt", "entry_point", "canonical_solution", "test") if k in rec}
        problems.append(Problem.from_record({**keep, "source": source, "split": "test"}, where=where))
    bases = {p.task_id for p in problems}
    for where, rec in iter_jsonl(DATA_DIR / "recode" / f"{FAMILIES[family]}.jsonl.gz"):
        for field, kind in (("perturbation_name", str), ("seed", int), ("task_id", str)):
            if not isinstance(rec.get(field), kind) or isinstance(rec.get(field), bool):
                raise RecordError(where, field, f"expected {kind.__name__}, got {type(rec.get(field)).__name__}")
        if rec["task_id"] not in bases:
            raise RecordError(where, "task_id", f"{rec['task_id']!r} is not a nominal problem of {NOMINAL[nominal_kind].name}")
        task_id = variant_id(rec["task_id"], rec["perturbation_name"], rec["seed"])
        keep = {k: rec[k] for k in ("prompt", "entry_point", "canonical_solution", "test")}
        problems.append(Problem.from_record({**keep, "task_id": task_id, "source": source, "split": "test"}, where=where))
    return problems


def _loader(family: str) -> Callable[[str], list[Problem]]:
    return lambda split: load_recode(family)


for _family, _file in FAMILIES.items():
    register(DatasetSpec(
        f"recode-{_family}", _loader(_family), ("test",), "test", {"synthesize": "continue"}, base_task=base_task, variant=variant,
        # Perturbed copies of HumanEval, which is decontaminated against already.
        benchmark=False,
        description=f"ReCode {_family} ({_file}): HumanEval perturbed, nominal + types x seeds; RP/RD/RR@k per type and family"))
