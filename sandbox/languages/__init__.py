"""The language registry: every module of this package whose name does not start with "_" is one
language, named after the module (`Problem.language`; `sandbox.registry.problem_from_record` checks it).
Adding a language is adding one module here. A language module defines:

    LANGUAGE = Language(name="python", display_name="Python", runs_in="worker", selftest={...},
                        task_id_prefixes=("python",), debian_packages=(), tools=(), humanevalpack=True)
    def validate(problem) -> None            # raise PlanError if the problem's tests are unusable
    # and the function its `runs_in` calls for:
    def prepare(problem, completion, config) -> tuple[dict, list[str]]   # "worker": the job, its case names
    def judge(problem, completion, sample_index, config) -> Verdict      # "isolated": one isolated run

(`Language`, sandbox/languages/_record.py, says what each fact is for.) Every table about languages
-- task-id prefixes, display names in prompts, Debian packages, tools, the selftest's problems,
HumanEvalPack's languages -- is derived from these records by `sandbox.registry`; no other file lists
languages.

Languages outside this directory: RRTF_SANDBOX_LANGUAGES (directories, separated like PATH) adds each
directory's modules to this package before NAMES is computed, as if they were here (how a language is
tried out, and how tests/sandbox/test_structure.py shows that one module is all a language takes). A name
given twice is an error, never a silent replacement of a language.

This module only names the languages (it imports none of them, so `records` can depend on it);
`sandbox.registry.language(name)` loads one.
"""
from __future__ import annotations

import os
import pkgutil

from sandbox.languages._record import Language

EXTRA_PATH_VAR = "RRTF_SANDBOX_LANGUAGES"


def _names(path: list[str]) -> tuple[str, ...]:
    where: dict[str, str] = {}
    for directory in path:
        for module in pkgutil.iter_modules([directory]):
            if module.name.startswith("_"):
                continue
            if module.name in where:
                raise ImportError(f"sandbox language {module.name!r} is defined twice: in {where[module.name]} and {directory}")
            where[module.name] = directory
    return tuple(sorted(where))


__path__ += [d for d in os.environ.get(EXTRA_PATH_VAR, "").split(os.pathsep) if d]
NAMES = _names(__path__)


class PlanError(ValueError):
    """The problem's own test code is unusable (not the candidate's fault)."""


__all__ = ["EXTRA_PATH_VAR", "NAMES", "Language", "PlanError"]
