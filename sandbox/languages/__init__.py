"""The language registry: every module of this package whose name does not start with "_" is one
language, named after the module (`Problem.language`; `sandbox.records.LANGUAGES` is `NAMES`).
Adding a language is adding one module here. A language module defines:

    NAME = "python"                          # == the module's name
    def validate(problem) -> None            # raise PlanError if the problem's tests are unusable
    # and one of two ways of judging:
    RUNS_IN = "worker"                       # in the warm worker pool (sandbox/worker/, Python)
    def prepare(problem, completion, config) -> tuple[dict, list[str]]   # the job, its case names
    # or
    RUNS_IN = "isolated"                     # one fresh isolated run per sample (sandbox/compiled/)
    def judge(problem, completion, sample_index, config) -> Verdict

This module only names the languages (it imports none of them, so `records` can depend on it);
`sandbox.registry.language(name)` loads one.
"""
from __future__ import annotations

import pkgutil

NAMES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))


class PlanError(ValueError):
    """The problem's own test code is unusable (not the candidate's fault)."""
