"""Loads a registered language module (sandbox/languages/) by name, once."""
from __future__ import annotations

import functools
import importlib
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
