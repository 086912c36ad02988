"""The tree's own rules (docs/architecture.md): no import cycle among the project's modules (imports
inside functions count too), no source file over 500 lines, and the light shared layer -- backends,
datasets, prompts, records, the store -- and data_evol import without torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from testkit import REPO

PACKAGES = ("rrtf", "sandbox", "data_evol", "quantize")
MAX_LINES = 500


def project_modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules `name` imports anywhere in its source (top level or inside functions)."""
    is_pkg = path.name == "__init__.py"
    deps = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            deps.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                deps.add(sub if sub in modules else base)
    return {d for d in deps if d in modules and d != name}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_the_cycle_finder_finds_cycles():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_counting_imports_inside_functions():
    modules = project_modules()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert sum(map(len, graph.values())) > 100  # the graph was really built
    assert "rrtf.prompts.extract" in graph["rrtf.backends.base"]
    assert find_cycles(graph) == []


def test_no_source_file_over_500_lines():
    too_long = {}
    for path in [*REPO.glob("*/**/*.py")]:
        if ".venv" in path.parts or "outputs" in path.parts:
            continue
        n = len(path.read_text().splitlines())
        if n > MAX_LINES:
            too_long[str(path.relative_to(REPO))] = n
    assert not too_long


def test_the_light_layer_and_data_evol_import_without_torch():
    code = ("import sys, data_evol, rrtf.backends, rrtf.datasets, rrtf.prompts, rrtf.records, rrtf.sampler, sandbox.store\n"
            "from rrtf.backends import BACKENDS; from rrtf.datasets import DATASETS; BACKENDS.names(); DATASETS.names()\n"
            "heavy = [m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules]\n"
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
