"""A language whose toolchain is not installed: one clear verdict naming the package to install (the
rest of the run goes on), instead of a wall of compiler output."""
from __future__ import annotations

import dataclasses
import os
import shutil

from sandbox.base.records import Status, Verdict
from sandbox.config import SandboxConfig
from sandbox.isolation import require_isolation
from sandbox.verdicts import Tally, make_verdict

MISSING = "toolchain missing"


def missing_tools(tools: dict[str, str]) -> str:
    """"" if every program is installed, else what to install: {path or name: Debian package}."""
    absent = sorted({package for tool, package in tools.items()
                     if not (os.path.exists(tool) if tool.startswith("/") else shutil.which(tool))})
    return f"{MISSING}: install the Debian package(s) {', '.join(absent)}" if absent else ""


def refused_verdict(task_id: str, sample_index: int, names: list[str], message: str, config: SandboxConfig) -> Verdict:
    """The candidate's own compile error, found before compiling (a construct the judge refuses)."""
    tally = Tally(len(names))
    tally.compile_error = message
    return make_verdict(task_id, sample_index, names, tally, isolation=require_isolation(config.isolation, config.allow_weak_isolation))


def missing_verdict(task_id: str, sample_index: int, names: list[str], message: str, config: SandboxConfig) -> Verdict:
    """A verdict that does not judge the candidate: typed NOT_JUDGED (ranking drops it, evaluation reports
    it), never a compile error the candidate would be blamed for."""
    verdict = refused_verdict(task_id, sample_index, names, message, config)
    return dataclasses.replace(verdict, status=Status.NOT_JUDGED, reason=message)
