"""Judges that run no program: datasets whose answers are read, not executed (clone and defect detection:
a yes/no label; Asleep at the Keyboard: a program parsed, compiled and analysed for its CWE).

The evaluation hands every (problem, completion) to `sandbox.check_many`; `StaticJudges` wraps the
sandbox so that problems of these datasets (by `Problem.source`) are judged here and everything else
still goes to the sandbox. The rollout's judging (resume by code hash, verdict files) is unchanged, so
these datasets get the same samples, verdicts and result files as the others.

    with Sandbox(...) as sandbox:
        judged = StaticJudges(sandbox)            # what rrtf.evaluate.runner.evaluate does
        verdicts = list(judged.check_many([(problem, "yes", 0)]))
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sandbox.base.records import Problem, Status, Verdict

# Problem.source -> "module:function(problem, completion, index) -> Verdict"; imported when first used.
JUDGES: dict[str, str] = {
    "bigclonebench": "rrtf.evaluate.static_judge:judge_label",
    "devign": "rrtf.evaluate.static_judge:judge_label",
    "aatk": "rrtf.evaluate.aatk:judge",
}
STATIC_WORKERS = 2  # gcc and Bandit are separate processes/short parses: two at a time keep a 2-core box usable


def judge_for(problem: Problem) -> Callable[[Problem, str, int], Verdict] | None:
    target = JUDGES.get(problem.source)
    if target is None:
        return None
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def judge_label(problem: Problem, completion: str, index: int) -> Verdict:
    """A classification answer: `completion` is the label the strategy parsed from the response ("yes",
    "no", or "unknown" when the response has neither); the gold label is `canonical_solution`. Right:
    PASSED; wrong: PARTIAL (a judged answer, 0 of 1); unknown: COMPILE_ERROR (no answer to judge)."""
    gold = problem.canonical_solution
    if completion not in {"yes", "no"}:
        return Verdict(problem.task_id, index, Status.COMPILE_ERROR, 0, 1, reason="unparsed: no yes/no answer", isolation="static")
    ok = completion == gold
    return Verdict(problem.task_id, index, Status.PASSED if ok else Status.PARTIAL, int(ok), 1,
                   reason="" if ok else f"wrong: answered {completion}, gold {gold}", isolation="static")


class StaticJudges:
    """A sandbox whose check_many judges the static datasets itself and passes the rest on."""

    def __init__(self, sandbox: Any):
        self.sandbox = sandbox

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sandbox, name)

    def check_many(self, items: Iterable[tuple[Problem, str, int]]) -> Iterator[Verdict]:
        mine, rest = [], []
        for item in items:
            judge = judge_for(item[0])
            (mine if judge is not None else rest).append((judge, item))
        if mine:
            with ThreadPoolExecutor(STATIC_WORKERS) as pool:
                yield from pool.map(lambda job: job[0](*job[1]), mine)
        if rest:
            yield from self.sandbox.check_many([item for _, item in rest])


def with_static_judges(sandbox: Any) -> Any:
    return sandbox if isinstance(sandbox, StaticJudges) else StaticJudges(sandbox)


__all__ = ["JUDGES", "StaticJudges", "judge_for", "judge_label", "with_static_judges"]
