"""Name -> class registries that discover their entries: a new backend, dataset, tuning method or
strategy is one module in the registry's package with one decorated class, and nothing else.

    BACKENDS = Registry("generation backend", package="rrtf.backends")

    @BACKENDS.register("transformers")  # in rrtf/backends/transformers_backend.py
    class TransformersBackend(GenerationBackend): ...

`get(name)` / `names()` import every module of `package` once (pkgutil), so registration needs no
central list. Modules outside the registry's package plug in the same way, with no edit here: those an
installed distribution names under the entry-point group "rrtf.plugins" (quantize registers its `ct2`
backend so: rrtf never imports quantize), and those listed in RRTF_PLUGINS (comma-separated module
names, importable from sys.path: a throwaway backend, dataset or strategy of one's own).

Modules of a registry package (and plug-ins) must therefore be cheap to import: heavy libraries (torch,
ctranslate2, peft) are imported inside the class that needs them, which is what keeps `import
rrtf.backends` free of torch (tests/test_architecture.py checks it).
"""
from __future__ import annotations

import functools
import importlib
import os
import pkgutil
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str | None = None):
        self.kind = kind
        self.package = package
        self._entries: dict[str, T] = {}
        self._discovered = package is None

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered by {_label(self._entries[name])}")
            self._entries[name] = obj
            if isinstance(obj, type):
                obj.registry_name = name  # type: ignore[attr-defined]
            return obj

        return decorate

    def add(self, name: str, obj: T) -> T:
        """Register a non-class entry (e.g. a DatasetSpec instance)."""
        return self.register(name)(obj)

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        pkg = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")
        load_plugins()

    def get(self, name: str) -> T:
        if name not in self._entries:
            self._discover()
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        self._discover()
        return sorted(self._entries.items())

    def __contains__(self, name: str) -> bool:
        self._discover()
        return name in self._entries


PLUGIN_GROUP = "rrtf.plugins"  # entry points of installed distributions: name = "module.path"
PLUGIN_ENV = "RRTF_PLUGINS"


@functools.cache
def load_plugins() -> tuple[str, ...]:
    """Import every plug-in module once (they register themselves with the registries they extend)."""
    from importlib.metadata import entry_points

    names = [ep.value for ep in entry_points(group=PLUGIN_GROUP)]
    names += [n.strip() for n in os.environ.get(PLUGIN_ENV, "").split(",") if n.strip()]
    for name in dict.fromkeys(names):
        importlib.import_module(name)
    return tuple(dict.fromkeys(names))


def _label(obj: object) -> str:
    return getattr(obj, "__name__", None) or type(obj).__name__
