"""The language registry's lookups: a language module (sandbox/languages/) loaded by name, once, and
every table about languages derived from the modules' `LANGUAGE` records -- nowhere else keeps one.

    language("cpp")               the module (validate, prepare / judge)
    language_record("cpp")        its Language record
    languages()                   every record, by name
    language_for_task_id("CPP/3") "cpp" (an id no language claims is Python: HumanEval/3, MBPP/7)
    display_name("cpp")           "C++"
    debian_packages(), tools()    what the sandbox needs on this machine
"""
from __future__ import annotations

import functools
import importlib
import os
import shutil
from types import ModuleType

from sandbox import languages as _package
from sandbox.languages import Language

DEFAULT_LANGUAGE = "python"  # what a task id without a language's prefix means (Problem.language's default too)


@functools.cache
def language(name: str) -> ModuleType:
    if name not in _package.NAMES:
        raise ValueError(f"unknown language {name!r}; known: {', '.join(_package.NAMES)}")
    module = importlib.import_module(f"sandbox.languages.{name}")
    record = getattr(module, "LANGUAGE", None)
    if not isinstance(record, Language) or record.name != name or not callable(getattr(module, "validate", None)) \
            or not callable(getattr(module, "prepare" if record.runs_in == "worker" else "judge", None)):
        raise TypeError(f"sandbox/languages/{name}.py does not define the language interface "
                        "(LANGUAGE = Language(name=its module's name, ...), validate, and prepare or judge)")
    return module


def language_record(name: str) -> Language:
    return language(name).LANGUAGE


def languages() -> tuple[Language, ...]:
    """Every registered language's record, in name order."""
    return tuple(language_record(name) for name in _package.NAMES)


@functools.cache
def _task_id_prefixes(names: tuple[str, ...]) -> dict[str, str]:
    table: dict[str, str] = {}
    for name in names:
        for prefix in language_record(name).task_id_prefixes:
            if table.setdefault(prefix, name) != name:
                raise TypeError(f"task-id prefix {prefix!r} is claimed by two languages: {table[prefix]} and {name}")
    return table


def language_for_task_id(task_id: str) -> str:
    """The language a HumanEval-style task id names by its head ("CPP/3", "JavaScript/0"), else Python."""
    head = task_id.split("/", 1)[0].lower()
    return _task_id_prefixes(_package.NAMES).get(head, DEFAULT_LANGUAGE)


def display_name(name: str) -> str:
    """How prompts name the language ("C++"); an unknown name is shown as it is."""
    return language_record(name).display_name if name in _package.NAMES else name


ISOLATION_PACKAGE, ISOLATION_TOOL = "bubblewrap", "bwrap"  # the strong isolation level (sandbox/isolation.py)


def debian_packages() -> list[str]:
    """Every Debian package the sandbox needs: bubblewrap and each language's debian_packages."""
    wanted = [ISOLATION_PACKAGE] + [p for lang in languages() for p in lang.debian_packages]
    return list(dict.fromkeys(wanted))


def tools() -> dict[str, str]:
    """{executable the sandbox runs: its path here ("" when absent)}: bwrap and every language's tools, names
    resolved on the sandbox's PATH (scripts/fresh_check.sh checks each comes from a package setup.sh installs)."""
    wanted = [ISOLATION_TOOL] + [t for lang in languages() for t in lang.tools]
    return {tool: tool_path(tool) for tool in dict.fromkeys(wanted)}


def tool_path(tool: str) -> str:
    """Where `tool` (an absolute path or a name on the sandbox's PATH) is here; "" when absent."""
    from sandbox.isolation import SANDBOX_PATH

    path = tool if tool.startswith("/") else shutil.which(tool, path=SANDBOX_PATH) or ""
    return path if path and os.path.exists(path) else ""


def problem_from_record(rec: dict, where: str = ""):
    """`Problem.from_record` where problems are read from outside (files, benchmarks): a record without a
    language gets the one its task id names (HumanEvalPack's "CPP/3"; others are Python), and a language
    the sandbox does not know is an error naming the record and the field."""
    from sandbox.base.errors import RecordError
    from sandbox.base.records import Problem

    if isinstance(rec, dict) and "language" not in rec and isinstance(rec.get("task_id"), (str, int)):
        rec = {**rec, "language": language_for_task_id(str(rec["task_id"]))}
    problem = Problem.from_record(rec, where=where)
    if problem.language not in _package.NAMES:
        raise RecordError(where, "language", f"unknown language {problem.language!r}; known: {', '.join(_package.NAMES)}")
    return problem
