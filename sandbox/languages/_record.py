"""`Language`: everything the rest of the project needs to know about one sandbox language, in one typed,
frozen record. Each language module defines `LANGUAGE = Language(...)`; `sandbox.registry` derives every
table from these records (task-id prefixes, display names, Debian packages, tools, the selftest's
problems), so no other file lists languages. Standard library only (`sandbox.languages` re-exports it).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

RUNS_IN = ("worker", "isolated")


@dataclass(frozen=True)
class Language:
    name: str  # == the module's name; what `Problem.language` says
    display_name: str  # how prompts name it (OctoPack's "Write functional code in C++ ..."): "C++", "JavaScript"
    runs_in: str  # "worker": in the warm worker pool (sandbox/worker/, Python); "isolated": one isolated run per sample
    # The selftest's proof that the language judges on this machine: a problem record whose canonical_solution
    # passes and whose buggy_solution fails (`task_id` defaults to selftest/<name>, `language` is the name).
    selftest: Mapping[str, Any] = field(hash=False)
    # Heads of HumanEval-style task ids that mean this language ("CPP/12" -> "cpp"), matched case-insensitively.
    # An id no language claims (HumanEval/3, MBPP/7, ours) is Python (`sandbox.registry.DEFAULT_LANGUAGE`).
    task_id_prefixes: tuple[str, ...] = ()
    debian_packages: tuple[str, ...] = ()  # what `python -m sandbox packages` lists (scripts/setup.sh installs them)
    tools: tuple[str, ...] = ()  # executables it runs: absolute paths or names on the sandbox's PATH
    humanevalpack: bool = False  # HumanEvalPack (OctoPack) has this language: rrtf registers humanevalpack-<name>

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name.startswith("_"):
            raise ValueError(f"language name {self.name!r}: must be a module name not starting with '_'")
        if self.runs_in not in RUNS_IN:
            raise ValueError(f"language {self.name!r}: runs_in must be one of {RUNS_IN}, not {self.runs_in!r}")
        if self.selftest.get("language", self.name) != self.name:
            raise ValueError(f"language {self.name!r}: its selftest problem is in {self.selftest['language']!r}")
        selftest = {"task_id": f"selftest/{self.name}", **self.selftest, "language": self.name}
        object.__setattr__(self, "selftest", MappingProxyType(selftest))  # read-only, as the rest of the record
        object.__setattr__(self, "task_id_prefixes", tuple(p.lower() for p in self.task_id_prefixes))
        object.__setattr__(self, "debian_packages", tuple(self.debian_packages))
        object.__setattr__(self, "tools", tuple(self.tools))
