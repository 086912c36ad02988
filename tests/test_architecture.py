"""The tree's own rules (docs/architecture.md): no import cycle among the project's modules (imports
inside functions count too) nor among its packages (dependencies flow sandbox <- rrtf <- data_evol,
quantize), no source file over 500 lines, the light shared layer -- backends, datasets, prompts,
records, the store -- and data_evol import without torch, and a backend, a dataset with its own prompt
strategy, or a language is one file that plugs in."""
from __future__ import annotations

import ast
import os
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


# Which package may import which (an edge not listed is a dependency the wrong way).
ALLOWED = {"sandbox": set(), "rrtf": {"sandbox"}, "data_evol": {"rrtf", "sandbox"}, "quantize": {"rrtf", "sandbox"}}


def test_packages_depend_one_way():
    modules = project_modules()
    edges: dict[str, set[str]] = {pkg: set() for pkg in PACKAGES}
    where: dict[tuple[str, str], str] = {}
    for name, path in modules.items():
        for dep in imports_of(name, path, modules):
            a, b = name.split(".")[0], dep.split(".")[0]
            if a != b:
                edges[a].add(b)
                where.setdefault((a, b), f"{name} imports {dep}")
    wrong = {f"{a} -> {b}": where[(a, b)] for a in edges for b in edges[a] if b not in ALLOWED[a]}
    assert not wrong, wrong
    assert find_cycles(edges) == []
    assert edges["quantize"] >= {"rrtf"} and edges["rrtf"] == {"sandbox"}  # the graph was really built


def test_the_foundation_stands_apart_from_the_judge():
    """sandbox.base (records, schema, store, errors) imports nothing else of the project, statically or
    at run time: the judge uses it like every other package, and does not own it."""
    modules = project_modules()
    base = {name: imports_of(name, path, modules) for name, path in modules.items() if name.startswith("sandbox.base")}
    assert {"sandbox.base.records", "sandbox.base.store", "sandbox.base.schema", "sandbox.base.errors"} <= set(base)
    outside = {name: sorted(d for d in deps if not d.startswith("sandbox.base")) for name, deps in base.items()}
    assert not any(outside.values()), outside
    code = ("import sys, sandbox.base.records, sandbox.base.store, sandbox.base.schema, sandbox.base.errors\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('sandbox', 'rrtf') and not m.startswith('sandbox.base'))\n"
            "print(loaded); sys.exit(1 if set(loaded) - {'sandbox'} else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


PLUGIN = """
from rrtf.backends import BACKENDS, GenerationBackend
from rrtf.datasets import DatasetSpec, register
from rrtf.prompts import STRATEGIES
from rrtf.prompts.strategies.instruction import InstructStrategy
from sandbox.base.records import Problem


@BACKENDS.register("echo")
class EchoBackend(GenerationBackend):
    def _generate(self, requests, params):
        return [["    return 42\\n"] * params.n for _ in requests]


@STRATEGIES.register("shout")
class ShoutStrategy(InstructStrategy):
    def prompt(self, problem, template=None):
        return problem.prompt.upper()


register(DatasetSpec("toy-answers", lambda split: [Problem(task_id="toy/0", prompt="def answer():\\n", entry_point="answer",
                                                         test="def check(f):\\n    assert f() == 42\\n", canonical_solution="    return 42\\n")],
                     ("test",), "test", {"synthesize": "shout"}, description="a throwaway dataset"))
"""


def test_a_backend_and_a_dataset_with_its_own_strategy_are_one_file_each(tmp_path):
    """A module outside the tree, named in RRTF_PLUGINS, registers a backend, a prompt strategy and a
    dataset asked with it; training and evaluation then ask the dataset with that strategy -- no other
    file edited."""
    (tmp_path / "my_plugin.py").write_text(PLUGIN)
    code = ("from rrtf.backends import BACKENDS; from rrtf.datasets import load_dataset; from rrtf.rollout import ask\n"
            "assert 'echo' in BACKENDS.names()\n"
            "asked = ask('toy-answers', load_dataset('toy-answers').problems)\n"
            "assert asked[0].strategy == 'shout' and asked[0].prompt() == 'DEF ANSWER():\\n', asked[0].prompt()\n"
            "out = BACKENDS.get('echo')().generate([asked[0].prompt()], n=2, max_new_tokens=8)\n"
            "assert out == [['    return 42\\n'] * 2], out\n"
            "print('plugged')\n")
    env = {**os.environ, "RRTF_PLUGINS": "my_plugin", "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0 and "plugged" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".py") == ["my_plugin.py"]


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
    code = ("import sys, data_evol, rrtf.backends, rrtf.datasets, rrtf.prompts, rrtf.records, rrtf.sampler, sandbox.base.store\n"
            "from rrtf.backends import BACKENDS; from rrtf.datasets import DATASETS; BACKENDS.names(); DATASETS.names()\n"
            "heavy = [m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules]\n"
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
