"""Stage 6: decide, from the sandbox's results, which tests and answers to keep (a pure function).

A test is dropped when its author's own solution fails it in any run (`author_failed`) or when any
solution's result on it changes between runs (`flaky`). A task left with fewer than min_tests tests
is dropped (`too_few_tests`); so is one where no teacher's solution passes every kept test in every
run (`no_passing_answer`), or where every passing solution copies a benchmark solution
(`contaminated_solution`). Every teacher's solution is kept (`teacher_answers`): the passing ones first,
in priority order (the first is `canonical_solution`), then the failing ones, in priority order -- RRTF
ranks teachers of different quality by their tests (PanGu-Coder2 did not filter its teachers' answers
before ranking), so a weak teacher's wrong answer is a candidate to rank below, not something to hide.
"""
from __future__ import annotations

import re
from typing import Any

from data_evol.records import Answer, Instruction
from sandbox.base.records import Problem

SOURCE = "data_evol"


def kept_tests(validation: dict) -> tuple[list[int], dict[str, int]]:
    """Indices of the tests that survive, and counts of why the others did not.

    A test goes when a solution's result on it changes between runs (`flaky`), when its author's own
    solution fails it (`author_failed`), or when it contradicts the anchor (`contradicts_anchor`): the
    highest-priority solution that passes every test its author wrote and kept. Teachers of
    different quality disagree; the better one (listed first; a seed's own answer first of all)
    decides, so a weak teacher's consistent but wrong tests cannot sink a right answer.
    """
    tests, authors, results = validation["tests"], validation["authors"], validation["results"]
    counts = {"author_failed": 0, "flaky": 0, "contradicts_anchor": 0}
    candidates = []
    for i, _ in enumerate(tests):
        runs_by_teacher = [[run[i] for run in runs if len(run) > i] for runs in results.values()]
        if any(len(set(r)) > 1 for r in runs_by_teacher):
            counts["flaky"] += 1
            continue
        author_runs = [run[i] if len(run) > i else False for run in results.get(authors[i], [[]])]
        if not author_runs or not all(author_runs):
            counts["author_failed"] += 1
            continue
        candidates.append(i)
    anchor = next((t for t in validation["solvers"] if any(authors[i] == t for i in candidates)
                   and passes(validation, t, [i for i in candidates if authors[i] == t])), None)
    keep = [i for i in candidates if anchor is None or passes(validation, anchor, [i])]
    counts["contradicts_anchor"] = len(candidates) - len(keep)
    return keep, counts


def passes(validation: dict, teacher: str, indices: list[int]) -> bool:
    runs = validation["results"].get(teacher) or []
    return bool(runs) and all(len(run) == len(validation["tests"]) and all(run[i] for i in indices) for run in runs)


def select(task: Instruction, validation: dict, answers: dict[str, Answer], *, min_tests: int,
           contaminated=lambda solution: None) -> tuple[dict[str, Any] | None, str, dict]:
    """(Problem record or None, reason it was dropped or "", details for the stats)."""
    indices, counts = kept_tests(validation)
    details: dict[str, Any] = {"tests_proposed": len(validation["tests"]), "tests_kept": len(indices), **counts,
                               "teacher_passed": {}, "entry_point_mismatch": len(validation.get("entry_point_mismatch", []))}
    if len(indices) < min_tests:
        return None, "too_few_tests", details
    passing = []
    for teacher in validation["solvers"]:
        ok = passes(validation, teacher, indices)
        details["teacher_passed"][teacher] = ok
        if ok:
            passing.append(teacher)
    if not passing:
        return None, "no_passing_answer", details
    clean = [t for t in passing if contaminated(answers[t].solution) is None]
    details["contaminated_answers"] = len(passing) - len(clean)
    if not clean:
        return None, "contaminated_solution", details
    entry = validation["entry_point"]
    prompt = task.instruction
    if not re.search(rf"\b{re.escape(entry)}\b", prompt):  # the tests call it by name: the task must say the name
        prompt += f"\nName the function `{entry}`."
    problem = Problem(task_id=f"evol/{task.id}", prompt=prompt, entry_point=entry, language="python",
                      test_list=[validation["tests"][i] for i in indices], canonical_solution=answers[clean[0]].solution,
                      source=SOURCE, split="train")
    record = problem.to_record()
    record["evol"] = task.provenance()
    failing = [t for t in validation["solvers"] if t not in passing and t in answers and contaminated(answers[t].solution) is None]
    record["teacher_answers"] = [{"teacher": t, "solution": answers[t].solution} for t in clean + failing]
    return record, "", details


__all__ = ["SOURCE", "kept_tests", "passes", "select"]
