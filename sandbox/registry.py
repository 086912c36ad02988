"""Loads a registered language module (sandbox/languages/) by name, once."""
from __future__ import annotations

import functools
import importlib
import os
import shutil
from types import ModuleType

from sandbox.languages import NAMES


@functools.cache
def language(name: str) -> ModuleType:
    if name not in NAMES:
        raise ValueError(f"unknown language {name!r}; known: {', '.join(NAMES)}")
    module = importlib.import_module(f"sandbox.languages.{name}")
    if getattr(module, "NAME", None) != name or getattr(module, "RUNS_IN", None) not in ("worker", "isolated"):
        raise TypeError(f"sandbox/languages/{name}.py does not define the language interface")
    return module


ISOLATION_PACKAGE, ISOLATION_TOOL = "bubblewrap", "bwrap"  # the strong isolation level (sandbox/isolation.py)


def debian_packages() -> list[str]:
    """Every Debian package the sandbox needs: bubblewrap and each language's DEBIAN_PACKAGES."""
    wanted = [ISOLATION_PACKAGE] + [p for name in NAMES for p in language(name).DEBIAN_PACKAGES]
    return list(dict.fromkeys(wanted))


def tools() -> dict[str, str]:
    """{executable the sandbox runs: its path here ("" when absent)}: bwrap and every language's TOOLS, names
    resolved on the sandbox's PATH (scripts/fresh_check.sh checks each comes from a package setup.sh installs)."""
    from sandbox.isolation import SANDBOX_PATH

    wanted = [ISOLATION_TOOL] + [t for name in NAMES for t in language(name).TOOLS]
    found = {}
    for tool in dict.fromkeys(wanted):
        path = tool if tool.startswith("/") else shutil.which(tool, path=SANDBOX_PATH) or ""
        found[tool] = path if path and os.path.exists(path) else ""
    return found
