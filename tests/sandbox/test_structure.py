"""The sandbox's shape, checked: no import cycle among its modules (imports inside functions
included), short files, an in-sandbox worker package that needs nothing but the standard library,
one registered module per language, and ruff-clean code."""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.languages import NAMES

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGE = ROOT / "sandbox"
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """Every module `path` imports, anywhere in the file (inside functions too), relative imports
    resolved; `from package import module` depends on that module, not on the package."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            submodules = {f"{base}.{alias.name}" for alias in node.names} & modules
            out.update(submodules)
            if len(submodules) < len(node.names):
                out.add(base)
    return out


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports(path, set(files)) if m in files and m != name} for name, path in files.items()}


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            assert cycle is None, " -> ".join(cycle)


def test_files_are_short():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_worker_package_needs_only_the_standard_library():
    for path in (PACKAGE / "worker").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                continue  # its own modules
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] in sys.stdlib_module_names or name == "__future__", (path.name, name)


def test_worker_package_runs_isolated_from_the_project():
    """It starts under `python -I -S` with only its own directory's parent on the path."""
    boot = "import sys; sys.path.append(sys.argv[1]); import worker.zygote, worker.runner; print('ok')"
    r = subprocess.run([sys.executable, "-I", "-S", "-c", boot, str(PACKAGE)], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "ok", r.stderr


def test_each_language_is_one_registered_module():
    modules = {p.stem for p in (PACKAGE / "languages").glob("*.py") if not p.stem.startswith("_")}
    assert set(NAMES) == modules
    from sandbox.base.records import Problem
    from sandbox.registry import language, language_for_task_id, languages

    assert [lang.name for lang in languages()] == list(NAMES)
    for lang in languages():
        module = language(lang.name)
        assert module.LANGUAGE is lang and callable(module.validate)
        assert callable(module.prepare if lang.runs_in == "worker" else module.judge)
        assert Problem.from_record(dict(lang.selftest)).language == lang.name
        for prefix in lang.task_id_prefixes:
            assert language_for_task_id(f"{prefix.upper()}/3") == lang.name
    assert language_for_task_id("HumanEval/3") == language_for_task_id("MBPP/7") == "python"


TOY_LANGUAGE = """
from sandbox.languages import Language

LANGUAGE = Language(name="toy", display_name="Toy Lisp", runs_in="isolated", task_id_prefixes=("ToyLisp",),
                    debian_packages=("toy-lisp-compiler",), tools=("sh",),
                    selftest={"entry_point": "add", "prompt": "(defun add (x y)\\n", "canonical_solution": "  (+ x y))\\n",
                              "buggy_solution": "  (- x y))\\n", "test": "(assert (= (add 2 3) 5))\\n"})


def validate(problem):
    pass


def judge(problem, completion, sample_index, config):  # never called: the test reads only the derived tables
    raise NotImplementedError("toy: a registry test's language, not a judge")
"""

DERIVED_TABLES = """
import json
import sandbox.languages
from rrtf.datasets import humanevalpack
from rrtf.prompts.octopack import synthesize_instruction
from sandbox import registry
from sandbox.base.records import Problem
from sandbox.selftest import installed_languages, language_problems

print(json.dumps({
    "names": sandbox.languages.NAMES,
    "language_for_task_id": registry.language_for_task_id("ToyLisp/7"),
    "problem_language": registry.problem_from_record({"task_id": "ToyLisp/7", "prompt": "", "test": "(assert t)"}).language,
    "display_name": registry.display_name("toy"),
    "instruction": synthesize_instruction("toy"),
    "debian_packages": registry.debian_packages(),
    "tools": registry.tools(),
    "selftest": [[lang.name, problem.task_id, problem.language] for lang, problem in language_problems()],
    "installed": sorted(installed_languages()),
    "humanevalpack": humanevalpack.LANGUAGES,
}))
"""


def test_a_new_language_is_one_module(tmp_path):
    """A language written as one module in a directory of its own (RRTF_SANDBOX_LANGUAGES, the registry's
    hook for modules outside sandbox/languages/) is in every derived table; no other file was edited."""
    from sandbox.languages import EXTRA_PATH_VAR

    (tmp_path / "toy.py").write_text(TOY_LANGUAGE)
    env = {**os.environ, EXTRA_PATH_VAR: str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", DERIVED_TABLES], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    tables = json.loads(run.stdout)
    assert tables["names"] == sorted([*NAMES, "toy"])
    assert tables["language_for_task_id"] == tables["problem_language"] == "toy"
    assert tables["display_name"] == "Toy Lisp" and "in Toy Lisp according" in tables["instruction"]
    assert "toy-lisp-compiler" in tables["debian_packages"] and tables["tools"]["sh"]
    assert ["toy", "selftest/toy", "toy"] in tables["selftest"] and len(tables["selftest"]) == len(NAMES) + 1
    assert "toy" in tables["installed"] and "toy" not in tables["humanevalpack"]
    listed = subprocess.run([sys.executable, "-m", "sandbox", "packages"], capture_output=True, text=True, cwd=ROOT, env=env,
                            timeout=120)
    assert "toy-lisp-compiler" in listed.stdout.split(), listed.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__") == ["toy.py"]


def test_a_language_defined_twice_is_an_error(tmp_path):
    from sandbox.languages import EXTRA_PATH_VAR

    (tmp_path / "python.py").write_text(TOY_LANGUAGE)
    run = subprocess.run([sys.executable, "-c", "import sandbox.languages"], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, EXTRA_PATH_VAR: str(tmp_path)}, timeout=120)
    assert run.returncode != 0 and "'python' is defined twice" in run.stderr


@pytest.mark.skipif(shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff not installed")
def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    # The project's shared foundation (sandbox/base/) keeps the project's own line length.
    paths = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "base"]
    paths += ["benchmarks/sandbox_throughput.py", *map(str, (ROOT / "tests" / "sandbox").glob("test_*.py"))]
    r = subprocess.run([ruff, "check", "--line-length", "140", "--select", "E,F,W,I,B,UP", "--target-version", "py310",
                        *paths], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]
